"""cdk-nag (v3) acknowledgements: every accepted finding is listed with its reason, in code."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Accept the cdk-nag findings ``rule_ids`` on ``scope`` and its children.

    Parameters
    ----------
    scope
        Construct the findings were reported on (or an ancestor).
    reason
        Why the finding is accepted; it ends up in the validation report.
    rule_ids
        Rule ids, with the finding for multi-finding rules, e.g.
        ``"AwsSolutions-IAM5[Resource::*]"``.
    """
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids)
    )


def iam5_arn_finding(resource: IConstruct, suffix: str) -> str:
    """The cdk-nag IAM5 id of a wildcard on ``resource``'s ARN, e.g. ``<Bucket….Arn>/runs/*``.

    Parameters
    ----------
    resource
        L2 construct whose default child is the CloudFormation resource.
    suffix
        What follows the ARN in the policy, e.g. ``"/runs/*"`` or ``":*"``.
    """
    cfn_resource = resource.node.default_child
    if not isinstance(cfn_resource, CfnElement):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource")
    logical_id = Stack.of(resource).get_logical_id(cfn_resource)
    return f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>{suffix}]"


def iam4_finding(managed_policy_name: str) -> str:
    """The cdk-nag IAM4 id of an AWS managed policy, e.g. ``service-role/AWSGlueServiceRole``."""
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{managed_policy_name}]"


def iam5_action_findings(*actions: str) -> list[str]:
    """cdk-nag IAM5 ids of wildcard actions, e.g. ``s3:GetObject*``."""
    return [f"AwsSolutions-IAM5[Action::{action}]" for action in actions]


# The wildcard action groups CDK's bucket grants (read/put/delete) expand to.
S3_GRANT_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")
