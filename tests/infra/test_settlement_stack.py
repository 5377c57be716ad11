"""The synthesized settlement stack: resources, key properties, cdk-nag and cfn-lint clean.

One synthesis for the whole module (it costs seconds); the ASL and the Glue script are
stand-ins in a temp dir so the test does not depend on other parts being written.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

from infra.app import build_app
from infra.components.workflow import FUNCTION_SUBSTITUTIONS, GLUE_RUN_ACTIONS, JOB_SUBSTITUTION
from infra.config import PROJECT_ROOT, SourcePaths
from infra.stack import SettlementStack

EXTERNAL_ACCOUNT = "210987654321"
HANDLERS = {
    "lambdas/validate_batches.handler",
    "lambdas/open_run.handler",
    "lambdas/export_snapshot.handler",
    "lambdas/reconcile.handler",
    "lambdas/publish.handler",
    "lambdas/finalise.handler",
    "lambdas/record_failure.handler",
    "lambdas/parse_reference.handler",
}
PLACEHOLDERS = {*FUNCTION_SUBSTITUTIONS, JOB_SUBSTITUTION}


@dataclass(frozen=True)
class Synthesized:
    stack: SettlementStack
    template: Template
    raw: dict[str, Any]
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.raw["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        (item,) = self.resources(resource_type).items()
        return item

    def settlement_functions(self) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource["Properties"]
            for logical_id, resource in self.resources("AWS::Lambda::Function").items()
            if resource["Properties"].get("Handler", "").startswith("lambdas/")
        }


def write_stand_in_asl(path: Path) -> None:
    """A minimal ASL using every substitution name of the real definition."""
    states: dict[str, Any] = {}
    names = sorted(FUNCTION_SUBSTITUTIONS)
    for index, placeholder in enumerate(names):
        states[placeholder] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{placeholder}}}", "Payload.$": "$"},
            "Next": names[index + 1] if index + 1 < len(names) else "Calculate",
        }
    states["Calculate"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": f"${{{JOB_SUBSTITUTION}}}"},
        "End": True,
    }
    path.write_text(json.dumps({"StartAt": names[0], "States": states}))


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    workdir = tmp_path_factory.mktemp("infra")
    write_stand_in_asl(workdir / "settlement.asl.json")
    (workdir / "calculate_commissions.py").write_text("print('stand-in')\n")
    context = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    context["external_account_id"] = EXTERNAL_ACCOUNT
    sources = SourcePaths(
        project_root=PROJECT_ROOT,
        asl=workdir / "settlement.asl.json",
        glue_script=workdir / "calculate_commissions.py",
    )
    app, stack = build_app(App(context=context, outdir=str(workdir / "cdk.out")), sources=sources)
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    raw = assembly.get_stack_artifact(stack.artifact_id).template
    return Synthesized(stack, Template.from_json(raw), raw, workdir / "cdk.out")


def test_data_bucket_is_encrypted_private_versioned_and_ssl_only(synthesized: Synthesized) -> None:
    # GIVEN the stack WHEN synthesized THEN the data bucket is encrypted, versioned, not public
    synthesized.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    )
    # AND every bucket denies requests that are not over TLS
    for _, policy in synthesized.resources("AWS::S3::BucketPolicy").items():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_external_account_may_only_write_transaction_batches(synthesized: Synthesized) -> None:
    # GIVEN the external account WHEN its grants are read
    # THEN it may only put objects under incoming/transactions/
    statements = [
        statement
        for policy in synthesized.resources("AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if EXTERNAL_ACCOUNT in json.dumps(statement.get("Principal", {}))
    ]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert set(statement["Action"]) == {"s3:PutObject", "s3:AbortMultipartUpload"}
    resource = json.dumps(statement["Resource"])
    assert resource.endswith('"/incoming/transactions/*"]]}')


def test_one_python_311_lambda_per_handler(synthesized: Synthesized) -> None:
    # GIVEN the stack WHEN its functions are listed THEN each handler has one Python 3.11 Lambda
    functions = synthesized.settlement_functions()
    assert sorted(p["Handler"] for p in functions.values()) == sorted(HANDLERS)
    assert {p["Runtime"] for p in functions.values()} == {"python3.11"}
    # AND all run in the VPC with the settlement environment
    for properties in functions.values():
        assert properties["VpcConfig"]["SubnetIds"]
        variables = properties["Environment"]["Variables"]
        assert set(variables) >= {
            "SETTLE_DATA_STORE",
            "SETTLE_DATABASE_SECRET_ARN",
            "SETTLE_COREVIEW_URL",
            "SETTLE_COREVIEW_TOKEN_SECRET_ARN",
        }
        assert variables["SETTLE_COREVIEW_URL"] == "https://coreview.example.com"
        assert variables["SETTLE_DATA_STORE"]["Fn::Join"][1][0] == "s3://"


def statements_of(synthesized: Synthesized, handler: str) -> str:
    """All policy statements of the function running ``handler``, as JSON text."""
    (properties,) = (
        p for p in synthesized.settlement_functions().values() if p["Handler"] == handler
    )
    role = {"Ref": properties["Role"]["Fn::GetAtt"][0]}
    return json.dumps(
        [
            statement
            for policy in synthesized.resources("AWS::IAM::Policy").values()
            if role in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
    )


def test_grants_follow_what_each_function_touches(synthesized: Synthesized) -> None:
    # GIVEN each function's role WHEN its policies are read THEN only what it needs
    stack = synthesized.stack
    token = json.dumps(stack.resolve(stack.coreview_token.secret_arn))
    database_secret = json.dumps(stack.resolve(stack.database.secret.secret_arn))
    for handler in HANDLERS:
        statements = statements_of(synthesized, handler)
        # THEN only publish, record_failure (was a lost commit stored?) and open_run (settling
        # a failed run that kept its locks) read the Core View token
        calls_coreview = handler in {
            "lambdas/publish.handler",
            "lambdas/record_failure.handler",
            "lambdas/open_run.handler",
        }
        assert (token in statements) == calls_coreview, handler
        # AND the functions that never open the database cannot read its credentials
        touches_db = handler not in {
            "lambdas/validate_batches.handler",
            "lambdas/reconcile.handler",
        }
        assert (database_secret in statements) == touches_db, handler
    # AND the reference parser touches only the reference prefixes, deleting only error reports
    parser = statements_of(synthesized, "lambdas/parse_reference.handler")
    assert "/runs/" not in parser
    assert "/incoming/transactions/" not in parser
    assert parser.count(".errors.json") == 2


def test_only_finalise_and_record_failure_read_execution_history(
    synthesized: Synthesized,
) -> None:
    # GIVEN each function's role WHEN its policies are read
    for handler in HANDLERS:
        statements = statements_of(synthesized, handler)
        # THEN the run-report writers may read this state machine's executions, nobody else
        reads_history = handler in {"lambdas/finalise.handler", "lambdas/record_failure.handler"}
        assert ("states:GetExecutionHistory" in statements) == reads_history, handler
        if reads_history:
            assert "execution:Settlement-settlement:*" in statements


def test_lambda_code_asset_holds_only_the_runtime_packages(synthesized: Synthesized) -> None:
    # GIVEN the staged code asset of the functions WHEN listed THEN only settlement/ and lambdas/
    (properties, *_) = synthesized.settlement_functions().values()
    asset_hash = properties["Code"]["S3Key"].removesuffix(".zip")
    staged = synthesized.outdir / f"asset.{asset_hash}"
    top_level = {path.name for path in staged.iterdir()}
    assert top_level == {"settlement", "lambdas"}
    assert not list(staged.rglob("__pycache__"))


def test_reference_uploads_notify_the_parser(synthesized: Synthesized) -> None:
    # GIVEN the notification resource WHEN read
    # THEN any upload under the matrix and targets prefixes triggers the parser, whatever its
    # suffix (the parser reports an unsupported or upper-case-named file itself)
    _, notifications = synthesized.only("Custom::S3BucketNotifications")
    configurations = notifications["Properties"]["NotificationConfiguration"][
        "LambdaFunctionConfigurations"
    ]
    filters = set()
    parser_ids = {
        logical_id
        for logical_id, properties in synthesized.settlement_functions().items()
        if properties["Handler"] == "lambdas/parse_reference.handler"
    }
    for configuration in configurations:
        assert configuration["Events"] == ["s3:ObjectCreated:*"]
        assert configuration["LambdaFunctionArn"]["Fn::GetAtt"][0] in parser_ids
        rules = configuration["Filter"]["Key"]["FilterRules"]
        filters.add(tuple(sorted((rule["Name"], rule["Value"]) for rule in rules)))
    assert filters == {
        (("prefix", f"incoming/reference/{kind}/"),) for kind in ("matrix", "targets")
    }


def test_database_is_postgres_15_private_and_encrypted(synthesized: Synthesized) -> None:
    # GIVEN the RDS instance WHEN read THEN PostgreSQL 15, not public, encrypted, generated secret
    _, instance = synthesized.only("AWS::RDS::DBInstance")
    properties = instance["Properties"]
    assert properties["Engine"] == "postgres"
    assert properties["EngineVersion"].split(".")[0] == "15"
    assert properties["PubliclyAccessible"] is False
    assert properties["StorageEncrypted"] is True
    assert "MasterUserPassword" in json.dumps(properties)  # resolved from Secrets Manager
    assert "resolve:secretsmanager" in json.dumps(properties["MasterUserPassword"])


def test_lambdas_and_glue_may_reach_the_database(synthesized: Synthesized) -> None:
    # GIVEN the security groups WHEN ingress on the DB port is read THEN from Lambdas and Glue
    stack = synthesized.stack
    database_group = stack.resolve(stack.database.security_group.security_group_id)
    database_port = {"Fn::GetAtt": [synthesized.only("AWS::RDS::DBInstance")[0], "Endpoint.Port"]}
    sources = {
        rule["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        for rule in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == database_group
        and rule["Properties"]["FromPort"] == database_port
    }
    expected = {
        stack.resolve(group.security_group_id)["Fn::GetAtt"][0]
        for group in (stack.functions.security_group, stack.calculation.security_group)
    }
    assert expected <= sources
    # AND the only other client is the credentials rotation Lambda
    assert all("RotationSingleUser" in source for source in sources - expected)


def test_glue_job_is_version_5_with_project_libraries(synthesized: Synthesized) -> None:
    # GIVEN the Glue job WHEN read THEN Glue 5.0 glueetl with store root and extra py files
    _, job = synthesized.only("AWS::Glue::Job")
    properties = job["Properties"]
    assert properties["GlueVersion"] == "5.0"
    assert properties["Command"]["Name"] == "glueetl"
    assert properties["Command"]["PythonVersion"] == "3"
    assert (properties["WorkerType"], properties["NumberOfWorkers"]) == ("G.1X", 10)
    arguments = properties["DefaultArguments"]
    assert arguments["--store_root"]["Fn::Join"][1][0] == "s3://"
    # AND the extra py files are the staged zip of the settlement and glue_jobs packages
    zip_key = arguments["--extra-py-files"]["Fn::Sub"].rsplit("/", 1)[1]
    with zipfile.ZipFile(synthesized.outdir / f"asset.{zip_key}") as libraries:
        top_level = {name.split("/", 1)[0] for name in libraries.namelist()}
    assert top_level == {"settlement", "glue_jobs"}


def test_state_machine_substitutes_every_function_and_the_job(synthesized: Synthesized) -> None:
    # GIVEN the state machine WHEN its substitutions are read THEN each names the deployed resource
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    assert set(substitutions) == PLACEHOLDERS
    functions = synthesized.settlement_functions()
    handler_of = {logical_id: props["Handler"] for logical_id, props in functions.items()}
    for placeholder, value in substitutions.items():
        if placeholder == JOB_SUBSTITUTION:
            assert value == {"Ref": synthesized.only("AWS::Glue::Job")[0]}
            continue
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        module = re.sub(r"(?<!^)(?=[A-Z])", "_", placeholder.removesuffix("FunctionArn")).lower()
        assert handler_of[logical_id] == f"lambdas/{module}.handler"
    # AND it logs everything but the execution data, and traces with X-Ray
    logging = machine["Properties"]["LoggingConfiguration"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ALL", False)
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def lambda_tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task of ``states`` (Map iterations included) that invokes a Lambda, by name."""
    tasks: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        if state["Type"] == "Map":
            tasks |= lambda_tasks(state["ItemProcessor"]["States"])
        elif "FunctionName" in state.get("Parameters", {}):
            tasks[name] = state
    return tasks


def test_no_task_times_out_before_its_lambda_does(synthesized: Synthesized) -> None:
    # GIVEN each Lambda task of the definition and the deployed function it invokes
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    functions = synthesized.settlement_functions()
    definition = json.loads((PROJECT_ROOT / "state_machine/settlement.asl.json").read_text())
    for name, task in lambda_tasks(definition["States"]).items():
        placeholder = task["Parameters"]["FunctionName"].removeprefix("${").removesuffix("}")
        logical_id = substitutions[placeholder]["Fn::GetAtt"][0]
        # THEN the task waits 30 s longer than the function may run: a task timed out while
        # its invocation goes on would be retried alongside it (a second commit or ledger
        # write), and one waiting longer only delays the failure handler
        assert task["TimeoutSeconds"] == functions[logical_id]["Timeout"] + 30, name


def test_state_machine_may_invoke_the_functions_and_run_the_job(synthesized: Synthesized) -> None:
    # GIVEN the state machine role policy WHEN read THEN it invokes the Lambdas and runs the job
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {json.dumps(sorted(_as_list(s["Action"]))): s for s in statements}
    glue = by_action[json.dumps(sorted(GLUE_RUN_ACTIONS))]
    job_id = synthesized.only("AWS::Glue::Job")[0]
    assert {"Ref": job_id} in glue["Resource"]["Fn::Join"][1]
    invoke = by_action[json.dumps(["lambda:InvokeFunction"])]
    invoked = {json.dumps(resource) for resource in invoke["Resource"]}
    for placeholder, value in _machine_substitutions(synthesized).items():
        if placeholder != JOB_SUBSTITUTION:
            assert json.dumps(value) in invoked


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _machine_substitutions(synthesized: Synthesized) -> dict[str, Any]:
    _, machine = synthesized.only("AWS::StepFunctions::StateMachine")
    substitutions: dict[str, Any] = machine["Properties"]["DefinitionSubstitutions"]
    return substitutions


def test_cdk_nag_reports_nothing_unacknowledged(synthesized: Synthesized) -> None:
    # GIVEN the synthesized stack (synth itself fails on a finding) WHEN the AWS Solutions pack
    # checks it again directly THEN every finding is fixed or acknowledged with a reason
    report = AwsSolutionsChecks().validate_scope(synthesized.stack)
    violations = [
        f"{violation.rule_name}: {[r.construct_path for r in violation.violating_resources]}"
        for violation in report.violations
    ]
    assert violations == []
    assert report.success


def test_cdk_nag_does_flag_an_unacknowledged_finding() -> None:
    # GIVEN a bucket without access logs or TLS enforcement WHEN the same pack checks it
    # THEN it reports the findings (the check above is live, not vacuous)
    stack = Stack(App(), "Probe")
    s3.Bucket(stack, "Plain")
    rule_names = {v.rule_name for v in AwsSolutionsChecks().validate_scope(stack).violations}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rule_names


def test_missing_dependency_layer_is_flagged(synthesized: Synthesized) -> None:
    # GIVEN no built dependency layer in the checkout WHEN synthesized THEN a warning says so
    if (PROJECT_ROOT / "build" / "lambda-layer" / "python").is_dir():
        pytest.skip("a real dependency layer is built in this checkout")
    Annotations.from_stack(synthesized.stack).has_warning(
        "*", Match.string_like_regexp("EMPTY dependency layer")
    )


def test_cfn_lint_finds_no_error(synthesized: Synthesized) -> None:
    # GIVEN the template WHEN cfn-lint checks it THEN it reports no error (warnings allowed)
    matches = lint(json.dumps(synthesized.raw), config=ManualArgs(regions=["eu-central-1"]))
    errors = [str(match) for match in matches if match.rule.id.startswith("E")]
    assert errors == []


def test_real_definition_uses_exactly_the_substitutions_supplied() -> None:
    # GIVEN the real ASL WHEN its ${…} placeholders are read THEN the stack supplies exactly them
    asl = SourcePaths.of_project().asl
    if not asl.exists():
        pytest.skip(f"{asl} not written yet")
    assert set(re.findall(r"\$\{(\w+)\}", asl.read_text())) == PLACEHOLDERS
