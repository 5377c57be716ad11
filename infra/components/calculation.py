"""The Glue 5.0 calculation job (spec §4), inside the VPC through a Glue network connection."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.components.storage import RUNS_PREFIX, TRANSACTIONS_PREFIX
from infra.nag import (
    S3_GRANT_ACTIONS,
    acknowledge,
    iam4_finding,
    iam5_action_findings,
    iam5_arn_finding,
)
from infra.packaging import zip_packages

GLUE_VERSION = "5.0"
EXTRA_PY_PACKAGES = ("settlement", "glue_jobs")
_GLUE_SERVICE_POLICY = "service-role/AWSGlueServiceRole"


class CalculationJob(Construct):
    """Glue job running ``glue_jobs/calculate_commissions.py`` with the project on its path.

    ``job_name`` is what the state machine starts (``CalculationJobName``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_root: Path,
        script: Path,
        bucket: s3.IBucket,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        worker_type: str,
        number_of_workers: int,
    ) -> None:
        super().__init__(scope, construct_id)
        script_asset = s3_assets.Asset(self, "Script", path=str(script))
        libraries_asset = s3_assets.Asset(
            self, "Libraries", path=str(_build_libraries_zip(project_root))
        )
        self.security_group = self._connection_security_group(vpc)
        connection = self._network_connection(subnet)
        self.role = self._role(bucket, [script_asset, libraries_asset])
        security_configuration = self._security_configuration()
        self.job = glue.CfnJob(
            self,
            "Job",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script_asset.s3_object_url
            ),
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            max_retries=0,  # a failed job run fails the execution (docs/decisions.md)
            timeout=180,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=4),
            connections=glue.CfnJob.ConnectionsListProperty(connections=[connection.ref]),
            security_configuration=security_configuration.ref,
            default_arguments={
                "--job-language": "python",
                "--store_root": f"s3://{bucket.bucket_name}",
                "--extra-py-files": libraries_asset.s3_object_url,
                "--enable-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--job-bookmark-option": "job-bookmark-disable",
            },
            description="Settlement: commissions of one run (spec §4)",
        )

    @property
    def job_name(self) -> str:
        """Name CloudFormation gave the job."""
        return self.job.ref

    @property
    def job_arn(self) -> str:
        """ARN for IAM statements about this job."""
        return Stack.of(self).format_arn(service="glue", resource="job", resource_name=self.job.ref)

    def _connection_security_group(self, vpc: ec2.IVpc) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(self, "SecurityGroup", vpc=vpc, description="Settlement Glue job")
        # Glue requires a self-referencing rule so its workers can talk to each other.
        group.add_ingress_rule(group, ec2.Port.all_tcp(), "Glue workers among themselves")
        return group

    def _network_connection(self, subnet: ec2.ISubnet) -> glue.CfnConnection:
        return glue.CfnConnection(
            self,
            "Connection",
            catalog_id=Stack.of(self).account,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                connection_type="NETWORK",
                description="Settlement VPC (RDS, S3 endpoint)",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    availability_zone=subnet.availability_zone,
                    subnet_id=subnet.subnet_id,
                    security_group_id_list=[self.security_group.security_group_id],
                ),
            ),
        )

    def _role(self, bucket: s3.IBucket, assets: list[s3_assets.Asset]) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(_GLUE_SERVICE_POLICY)],
        )
        for asset in assets:
            asset.grant_read(role)
        bucket.grant_read(role, f"{TRANSACTIONS_PREFIX}*")
        bucket.grant_read(role, f"{RUNS_PREFIX}*")
        bucket.grant_put(role, f"{RUNS_PREFIX}*")
        bucket.grant_delete(role, f"{RUNS_PREFIX}*")
        acknowledge(
            role,
            "AWSGlueServiceRole is the documented base role of Glue jobs (ENIs of the VPC "
            "connection, logs, metrics).",
            iam4_finding(_GLUE_SERVICE_POLICY),
        )
        acknowledge(
            role,
            "Object wildcards are confined to the landing and run prefixes, the CDK asset "
            "bucket and Glue's own log groups; action wildcards are CDK's grant groups.",
            *iam5_action_findings(*S3_GRANT_ACTIONS, "kms:ReEncrypt*", "kms:GenerateDataKey*"),
            iam5_arn_finding(bucket, f"/{TRANSACTIONS_PREFIX}*"),
            iam5_arn_finding(bucket, f"/{RUNS_PREFIX}*"),
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
            "cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
            "<AWS::AccountId>:log-group:/aws-glue/*]",
        )
        return role

    def _security_configuration(self) -> glue.CfnSecurityConfiguration:
        stack = Stack.of(self)
        key = kms.Key(self, "LogsKey", enable_key_rotation=True, description="Glue job logs")
        key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com"))
        key.grant_encrypt_decrypt(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:AssociateKmsKey"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws-glue/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        return glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{stack.stack_name}-calculation",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(s3_encryption_mode="SSE-S3")
                ],
            ),
        )


def _build_libraries_zip(project_root: Path) -> Path:
    # Outside the project (the Lambda asset must not pick it up) and outside cdk.out (CDK owns it).
    directory = Path(tempfile.mkdtemp(prefix="settle-glue-libs-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return zip_packages(project_root, EXTRA_PY_PACKAGES, directory / "settlement_libs.zip")
