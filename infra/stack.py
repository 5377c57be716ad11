"""The settlement stack: wires the components together (spec §1)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.calculation import CalculationJob
from infra.components.database import SettlementDatabase
from infra.components.functions import SettlementFunctions
from infra.components.network import Network
from infra.components.storage import DataBucket
from infra.components.workflow import SettlementWorkflow
from infra.config import InfraConfig, SourcePaths
from infra.nag import acknowledge, iam4_finding


class SettlementStack(Stack):
    """Data bucket, VPC, RDS, Lambdas, Glue job and the state machine of one environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InfraConfig,
        sources: SourcePaths,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        sources.check_exist()
        self.data = DataBucket(self, "Data", external_account_id=config.external_account_id)
        self.network = Network(self, "Network", nat_gateways=config.nat_gateways)
        self.database = SettlementDatabase(
            self,
            "Database",
            vpc=self.network.vpc,
            subnets=self.network.app_subnets,
            instance_type=config.database_instance_type,
            multi_az=config.database_multi_az,
        )
        self.coreview_token = self._coreview_token_secret()
        self.functions = SettlementFunctions(
            self,
            "Functions",
            project_root=sources.project_root,
            dependency_layer_dir=sources.project_root / config.dependency_layer_dir,
            vpc=self.network.vpc,
            subnets=self.network.app_subnets,
            bucket=self.data.bucket,
            database_secret=self.database.secret,
            coreview_url=config.coreview_url,
            coreview_token=self.coreview_token,
        )
        self.calculation = CalculationJob(
            self,
            "Calculation",
            project_root=sources.project_root,
            script=sources.glue_script,
            bucket=self.data.bucket,
            vpc=self.network.vpc,
            subnet=self.network.vpc.select_subnets(
                subnet_type=self.network.app_subnet_type
            ).subnets[0],
            worker_type=config.glue_worker_type,
            number_of_workers=config.glue_number_of_workers,
        )
        self.database.allow_from(self.functions.security_group, "Settlement Lambdas")
        self.database.allow_from(self.calculation.security_group, "Settlement Glue job")
        self.workflow = SettlementWorkflow(
            self,
            "Workflow",
            asl=sources.asl,
            functions=self.functions.by_id,
            job_name=self.calculation.job_name,
            job_arn=self.calculation.job_arn,
        )
        self._acknowledge_cdk_internals()
        self._outputs()

    def _acknowledge_cdk_internals(self) -> None:
        # Singletons CDK adds for S3 notifications; they are not ours to reshape.
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "CDK's S3 notification handler: AWS managed basic execution role only.",
                    iam4_finding("service-role/AWSLambdaBasicExecutionRole"),
                )

    def _coreview_token_secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "CoreViewToken",
            description="Bearer token for Core View; set its value after the first deploy.",
        )
        acknowledge(
            secret,
            "Core View issues the token; its owner rotates it, not Secrets Manager.",
            "AwsSolutions-SMG4",
        )
        return secret

    def _outputs(self) -> None:
        CfnOutput(self, "DataBucketName", value=self.data.bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "CalculationJobName", value=self.calculation.job_name)
        CfnOutput(self, "DatabaseSecretArn", value=self.database.secret.secret_arn)
        CfnOutput(self, "CoreViewTokenSecretArn", value=self.coreview_token.secret_arn)
