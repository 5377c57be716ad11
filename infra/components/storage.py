"""The data bucket: landing prefixes, run outputs, and the external account's write access."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge

TRANSACTIONS_PREFIX = "incoming/transactions/"
REFERENCE_PREFIXES = ("incoming/reference/matrix/", "incoming/reference/targets/")
RUNS_PREFIX = "runs/"


class DataBucket(Construct):
    """The data store of spec §1 on S3 (layout in docs/architecture.md).

    SSE-S3 rather than KMS so the external account can write without a key grant; object
    ownership is enforced so its uploads belong to this account.
    """

    def __init__(self, scope: Construct, construct_id: str, *, external_account_id: str) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        acknowledge(
            self.access_logs,
            "This is the access-log bucket; logging it into itself would loop.",
            "AwsSolutions-S1",
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    noncurrent_version_expiration=Duration.days(90),
                )
            ],
        )
        self._allow_external_batches(external_account_id)

    @property
    def store_root(self) -> str:
        """``s3://<bucket>``: the ``SETTLE_DATA_STORE`` / ``--store_root`` value."""
        return f"s3://{self.bucket.bucket_name}"

    def _allow_external_batches(self, account_id: str) -> None:
        # Write-only, one prefix: the delivering account can neither read nor list anything.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ExternalAccountDeliversTransactionBatches",
                principals=[iam.AccountPrincipal(account_id)],
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects(f"{TRANSACTIONS_PREFIX}*")],
            )
        )
