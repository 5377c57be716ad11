"""The settlement database: RDS PostgreSQL 15, private, encrypted, secret-held credentials."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge

DATABASE_NAME = "settlement"
DATABASE_PORT = 5433  # not the default 5432: a little less noise from scanners (cdk-nag RDS11)


class SettlementDatabase(Construct):
    """RDS PostgreSQL 15 holding reference versions, runs, period locks and the ledger.

    ``secret`` is the generated credentials secret with ``host``, ``port``, ``dbname``,
    ``username`` and ``password``; runtimes build ``SETTLE_DATABASE_URL`` from it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        instance_type: str,
        multi_az: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Settlement PostgreSQL",
            allow_all_outbound=False,
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_15_17),
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            port=DATABASE_PORT,
            database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret("settlement_admin"),
            publicly_accessible=False,
            storage_encrypted=True,
            multi_az=multi_az,
            allocated_storage=50,
            max_allocated_storage=500,
            backup_retention=Duration.days(14),
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
            iam_authentication=True,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            auto_minor_version_upgrade=True,
        )
        self.instance.add_rotation_single_user(automatically_after=Duration.days(30))
        if not multi_az:
            acknowledge(
                self.instance,
                "Single-AZ chosen by context database_multi_az=false (non-production).",
                "AwsSolutions-RDS3",
            )

    @property
    def secret(self) -> secretsmanager.ISecret:
        """The credentials secret (always present: credentials are generated)."""
        secret = self.instance.secret
        assert secret is not None, "generated credentials always create a secret"
        return secret

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        """Open the database port to ``peer`` (a Lambda or the Glue connection)."""
        self.instance.connections.allow_default_port_from(peer, description)
