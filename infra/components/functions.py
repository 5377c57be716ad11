"""The Lambda functions: one per handler module of ``lambdas/``, all from one code asset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.components.storage import REFERENCE_PREFIXES, RUNS_PREFIX, TRANSACTIONS_PREFIX
from infra.nag import (
    S3_GRANT_ACTIONS,
    acknowledge,
    iam4_finding,
    iam5_action_findings,
    iam5_arn_finding,
)

RUNTIME = lambda_.Runtime.PYTHON_3_11

# Only the runtime packages go into the code asset; later patterns override earlier ones.
CODE_ASSET_EXCLUDE = [
    "*",
    ".*",  # minimatch's `*` skips dot-files (.git, .venv)
    "!settlement",
    "!settlement/**",
    "!lambdas",
    "!lambdas/**",
    "**/__pycache__",
    "**/*.pyc",
    "**/.*",
]

_READ_INCOMING = f"{TRANSACTIONS_PREFIX}*"
_RUNS = f"{RUNS_PREFIX}*"


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda: its handler, its sizing and the bucket prefixes it may touch."""

    construct_id: str
    handler: str
    timeout: Duration
    memory_mb: int
    reads: tuple[str, ...] = (_RUNS,)
    writes: tuple[str, ...] = (_RUNS,)
    deletes: tuple[str, ...] = (_RUNS,)  # outputs are rewritten whole when a step is re-driven
    uses_database: bool = True
    calls_coreview: bool = False


FUNCTION_SPECS = (
    FunctionSpec(
        "ValidateBatches",
        "lambdas/validate_batches.handler",
        Duration.minutes(5),
        1024,
        reads=(_READ_INCOMING, _RUNS),
        uses_database=False,
    ),
    # Settles a failed run that kept its locks first: asks Core View, and may apply that run's
    # deltas to the ledger (Finalise's work, hence Finalise's time and memory).
    FunctionSpec(
        "OpenRun",
        "lambdas/open_run.handler",
        Duration.minutes(10),
        2048,
        calls_coreview=True,
    ),
    FunctionSpec("ExportSnapshot", "lambdas/export_snapshot.handler", Duration.minutes(10), 2048),
    FunctionSpec(
        "Reconcile", "lambdas/reconcile.handler", Duration.minutes(5), 1024, uses_database=False
    ),
    FunctionSpec(
        "Publish", "lambdas/publish.handler", Duration.minutes(15), 1024, calls_coreview=True
    ),
    FunctionSpec("Finalise", "lambdas/finalise.handler", Duration.minutes(10), 2048),
    # Asks Core View whether a run that failed while publishing was committed after all, and
    # then applies its deltas to the ledger (Finalise's work, hence Finalise's time and memory).
    FunctionSpec(
        "RecordFailure",
        "lambdas/record_failure.handler",
        Duration.minutes(10),
        2048,
        calls_coreview=True,
    ),
    FunctionSpec(
        "ParseReference",
        "lambdas/parse_reference.handler",
        Duration.minutes(5),
        1024,
        reads=tuple(f"{prefix}*" for prefix in REFERENCE_PREFIXES),
        writes=tuple(f"{prefix}*" for prefix in REFERENCE_PREFIXES),
        # A successful re-upload removes the stale rejection report, nothing else.
        deletes=tuple(f"{prefix}*.errors.json" for prefix in REFERENCE_PREFIXES),
    ),
)


class SettlementFunctions(Construct):
    """All settlement Lambdas, in the VPC, with least-privilege grants per function.

    Environment of every function: ``SETTLE_DATA_STORE``, ``SETTLE_DATABASE_SECRET_ARN`` (the
    handler builds ``SETTLE_DATABASE_URL`` from it), ``SETTLE_COREVIEW_URL`` and
    ``SETTLE_COREVIEW_TOKEN_SECRET_ARN``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_root: Path,
        dependency_layer_dir: Path,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        bucket: s3.IBucket,
        database_secret: secretsmanager.ISecret,
        coreview_url: str,
        coreview_token: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Settlement Lambdas"
        )
        code = lambda_.Code.from_asset(str(project_root), exclude=CODE_ASSET_EXCLUDE)
        layer = self._dependency_layer(dependency_layer_dir)
        environment = {
            "SETTLE_DATA_STORE": f"s3://{bucket.bucket_name}",
            "SETTLE_DATABASE_SECRET_ARN": database_secret.secret_arn,
            "SETTLE_COREVIEW_URL": coreview_url,
            "SETTLE_COREVIEW_TOKEN_SECRET_ARN": coreview_token.secret_arn,
            "POWERTOOLS_SERVICE_NAME": "settlement",
        }
        self.by_id: dict[str, lambda_.Function] = {}
        for spec in FUNCTION_SPECS:
            function = self._function(
                spec, code=code, layer=layer, environment=environment, vpc=vpc, subnets=subnets
            )
            for pattern in spec.reads:
                bucket.grant_read(function, pattern)
            for pattern in spec.writes:
                bucket.grant_put(function, pattern)
            for pattern in spec.deletes:
                bucket.grant_delete(function, pattern)
            if spec.uses_database:
                database_secret.grant_read(function)
            if spec.calls_coreview:
                coreview_token.grant_read(function)
            self.by_id[spec.construct_id] = function
        self._notify_reference_uploads(bucket)
        self._acknowledge_findings(bucket)

    def _function(
        self,
        spec: FunctionSpec,
        *,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.construct_id}Logs",
            retention=logs.RetentionDays.SIX_MONTHS,
            removal_policy=RemovalPolicy.RETAIN,
        )
        return lambda_.Function(
            self,
            spec.construct_id,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=spec.handler,
            code=code,
            layers=[layer],
            timeout=spec.timeout,
            memory_size=spec.memory_mb,
            environment=environment,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
        )

    def _dependency_layer(self, layer_dir: Path) -> lambda_.ILayerVersion:
        if not (layer_dir / "python").is_dir():
            # Synth must work on a fresh clone; the deployment is useless without the real layer.
            Annotations.of(self).add_warning_v2(
                "settlement:dependency-layer",
                f"{layer_dir}/python not found: deploying an EMPTY dependency layer. "
                "Build it first (docs/decisions.md, Infrastructure).",
            )
            layer_dir = Path(__file__).parent / "empty_layer"
        return lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Third-party packages of the settlement Lambdas",
        )

    def _acknowledge_findings(self, bucket: s3.IBucket) -> None:
        acknowledge(
            self,
            "Python 3.11 on purpose: the runtime of Glue 5.0 and of the project (one codebase).",
            "AwsSolutions-L1",
        )
        acknowledge(
            self,
            "AWS managed basic/VPC execution roles: only log delivery and the VPC ENIs.",
            iam4_finding("service-role/AWSLambdaBasicExecutionRole"),
            iam4_finding("service-role/AWSLambdaVPCAccessExecutionRole"),
        )
        patterns = {
            p for spec in FUNCTION_SPECS for p in (*spec.reads, *spec.writes, *spec.deletes)
        }
        acknowledge(
            self,
            "Object wildcards are confined to the prefixes each function owns (runs/, landing "
            "prefixes); action wildcards are CDK's grant groups; X-Ray takes no resource.",
            *iam5_action_findings(*S3_GRANT_ACTIONS),
            "AwsSolutions-IAM5[Resource::*]",
            *(iam5_arn_finding(bucket, f"/{pattern}") for pattern in sorted(patterns)),
        )

    def _notify_reference_uploads(self, bucket: s3.IBucket) -> None:
        # Every object under the prefixes, whatever its suffix (S3's suffix filters are
        # case-sensitive: `Matrix.XLSX` would be dropped without a report). The parser answers
        # an unsupported file with its `.errors.json` and ignores those reports themselves.
        destination = s3n.LambdaDestination(self.by_id["ParseReference"])
        for prefix in REFERENCE_PREFIXES:
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED, destination, s3.NotificationKeyFilter(prefix=prefix)
            )
