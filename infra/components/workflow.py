"""The settlement state machine: the one ASL file, with the deployed ARNs substituted in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.nag import acknowledge, iam5_arn_finding

# ASL placeholder -> construct id of the Lambda in SettlementFunctions.
FUNCTION_SUBSTITUTIONS = {
    "ValidateBatchesFunctionArn": "ValidateBatches",
    "OpenRunFunctionArn": "OpenRun",
    "ExportSnapshotFunctionArn": "ExportSnapshot",
    "ReconcileFunctionArn": "Reconcile",
    "PublishFunctionArn": "Publish",
    "FinaliseFunctionArn": "Finalise",
    "RecordFailureFunctionArn": "RecordFailure",
}
JOB_SUBSTITUTION = "CalculationJobName"
# Finalise and record_failure read the execution history for the run report's step timings.
HISTORY_READERS = ("Finalise", "RecordFailure")
GLUE_RUN_ACTIONS = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]


def definition_substitutions(
    functions: Mapping[str, lambda_.IFunction], job_name: str
) -> dict[str, str]:
    """Values for every ``${…}`` placeholder of ``state_machine/settlement.asl.json``.

    Parameters
    ----------
    functions
        Lambdas by construct id (``SettlementFunctions.by_id``).
    job_name
        Name of the calculation Glue job.
    """
    substitutions = {
        placeholder: functions[function_id].function_arn
        for placeholder, function_id in FUNCTION_SUBSTITUTIONS.items()
    }
    substitutions[JOB_SUBSTITUTION] = job_name
    return substitutions


class SettlementWorkflow(Construct):
    """Standard state machine with full (data-free) logging and X-Ray tracing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        asl: Path,
        functions: Mapping[str, lambda_.IFunction],
        job_name: str,
        job_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        state_machine_name = f"{Stack.of(self).stack_name}-settlement"
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_file(str(asl)),
            definition_substitutions=definition_substitutions(functions, job_name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )
        self._allow_tasks(functions, job_arn)
        self._allow_history_reads(functions, state_machine_name)

    def _allow_history_reads(
        self, functions: Mapping[str, lambda_.IFunction], state_machine_name: str
    ) -> None:
        # Built from the name, not the state machine's Ref: the machine already refers to the
        # functions, so a Ref back would be a dependency cycle.
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for function_id in HISTORY_READERS:
            function = functions[function_id]
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["states:GetExecutionHistory"], resources=[executions])
            )
            acknowledge(
                function,
                "History reads are limited to executions of this stack's state machine.",
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f"<AWS::AccountId>:execution:{state_machine_name}:*]",
            )

    def _allow_tasks(self, functions: Mapping[str, lambda_.IFunction], job_arn: str) -> None:
        # from_file cannot infer what the tasks call, so the grants are explicit.
        invoked = [functions[function_id] for function_id in FUNCTION_SUBSTITUTIONS.values()]
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[
                    arn
                    for function in invoked
                    for arn in (function.function_arn, f"{function.function_arn}:*")
                ],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=GLUE_RUN_ACTIONS, resources=[job_arn])
        )
        acknowledge(
            self.state_machine,
            "':*' covers versions and aliases of the listed Lambdas only; log delivery and "
            "X-Ray actions take no resource-level permissions.",
            "AwsSolutions-IAM5[Resource::*]",
            *(iam5_arn_finding(function, ":*") for function in invoked),
        )
