"""The product definition, state_machine/settlement.asl.json: its operator-facing shape (spec §8),
and the same path and result on the local runner and on moto's independent interpreter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settlement.bootstrap import Adapters
from settlement.config import load_settings
from state_machine.local import (
    CALCULATION_JOB,
    DEFINITION_PATH,
    FUNCTIONS,
    calculation_job,
    lambda_handlers,
    run_workflow,
)
from state_machine.runner import LocalRunner, TaskResources
from tests.fixtures.workflow import FakeCalculation, database_down, put_batch, sale

DEFINITION: dict[str, Any] = json.loads(DEFINITION_PATH.read_text())
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientError",
}
FAILURE_STATE = "Record failure and release periods"


def tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        if state["Type"] == "Map":
            found.update(tasks(state["ItemProcessor"]["States"]))
    return found


def test_the_placeholders_are_exactly_the_deployment_substitutions() -> None:
    text = DEFINITION_PATH.read_text()
    placeholders = {part.split("}", 1)[0] for part in text.split("${")[1:]}
    assert placeholders == {*FUNCTIONS, "CalculationJobName"}


def test_every_task_retries_transient_errors() -> None:
    for name, state in tasks(DEFINITION["States"]).items():
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        expected = (
            {"TransientError", "Glue.AWSGlueException"}
            if "glue" in state["Resource"]
            else TRANSIENT
        )
        assert expected <= retried, name
        assert "States.ALL" not in retried, f"{name} must not retry deterministic failures"


def test_every_top_level_step_catches_into_the_failure_path() -> None:
    for name, state in DEFINITION["States"].items():
        if state["Type"] not in ("Task", "Map"):
            continue
        if name == FAILURE_STATE:
            # uncaught: a failure to record fails the execution here, where a redrive resumes
            assert "Catch" not in state
            continue
        [catcher] = state["Catch"]
        assert catcher["ErrorEquals"] == ["States.ALL"], name
        assert (catcher["Next"], catcher["ResultPath"]) == (FAILURE_STATE, "$.failure"), name
    assert DEFINITION["States"][FAILURE_STATE]["Next"] == "Settlement failed"


def test_lambda_tasks_use_the_invoke_integration_and_the_run_id_is_the_execution_name() -> None:
    for name, state in tasks(DEFINITION["States"]).items():
        if "glue" in state["Resource"]:
            assert state["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
            assert set(state["Parameters"]["Arguments"]) == {
                "--run_id.$",
                "--periods.$",
                "--store_root.$",
            }
            assert set(state["ResultSelector"]) == {"JobRunState.$", "Id.$"}
            continue
        assert state["Resource"] == "arn:aws:states:::lambda:invoke", name
        assert set(state["Parameters"]) == {"FunctionName", "Payload"}, name
    validate = DEFINITION["States"]["Validate input and batches"]
    assert validate["Parameters"]["Payload"]["run_id.$"] == "$$.Execution.Name"


def test_the_publish_map_iterates_the_reconciled_parts() -> None:
    publish = DEFINITION["States"]["Publish delta parts"]
    assert publish["ItemsPath"] == "$.reconciliation.parts"
    assert 1 < publish["MaxConcurrency"] <= 10
    # part results never grow the payload: only a constant marks that every part went out
    assert (publish["ResultSelector"], publish["ResultPath"]) == (
        {"all_parts_published": True},
        "$.published",
    )


def test_the_local_runner_accepts_the_definition() -> None:
    LocalRunner(DEFINITION_PATH, resources=TaskResources(), substitutions={
        **{key: f"arn:aws:lambda:local:1:function:{value}" for key, value in FUNCTIONS.items()},
        "CalculationJobName": CALCULATION_JOB,
    })  # fmt: skip


# --------------------------------------------------------------------------- moto cross-check
def fresh_workspace(root: Path, monkeypatch: pytest.MonkeyPatch) -> Adapters:
    for variable in ("SETTLE_DATA_STORE", "SETTLE_DATABASE_URL", "SETTLE_COREVIEW_URL"):
        monkeypatch.delenv(variable, raising=False)
    adapters = Adapters(load_settings(root))
    put_batch(adapters.store, "b1", [sale(1), sale(2)])
    put_batch(adapters.store, "b2", [sale(3, price="1234.56")])
    return adapters


def moto_definition() -> str:
    text = DEFINITION_PATH.read_text()
    for placeholder, name in FUNCTIONS.items():
        text = text.replace(
            "${" + placeholder + "}", f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        )
    return text.replace("${CalculationJobName}", CALCULATION_JOB)


def without_locations(output: Any) -> Any:
    return {k: v for k, v in output.items() if k != "run_report_uri"} if output else output


@pytest.mark.parametrize(
    ("request_input", "case"),
    [
        ({"periods": ["2026-10"], "requested_by": "tests"}, "published"),
        ({"periods": ["2026-10"], "dry_run": True}, "dry-run"),
        ({"periods": ["2026-10"]}, "invalid-batch"),
        ({"periods": ["2026-10"]}, "calculation-fails"),
        ({"periods": ["2026-10"]}, "failure-not-recorded"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_local_runner_and_moto_agree_on_the_product_definition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request_input: dict[str, Any], case: str
) -> None:
    moto_sfn = pytest.importorskip("tests.support.moto_sfn")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # GIVEN two identical workspaces, one per interpreter
    local_ws = fresh_workspace(tmp_path / "local", monkeypatch)
    moto_ws = fresh_workspace(tmp_path / "moto", monkeypatch)
    if case == "invalid-batch":
        for workspace in (local_ws, moto_ws):
            workspace.store.write_bytes("incoming/transactions/b2.csv", b"tampered")
    fails = case in ("calculation-fails", "failure-not-recorded")
    failure = RuntimeError("executor lost") if fails else None
    broken = {"record_failure": database_down} if case == "failure-not-recorded" else {}
    # WHEN the product definition runs on each, with the same handlers and the same name
    local = run_workflow(
        local_ws, request_input, calculate=FakeCalculation(fail_with=failure), run_id="x1",
        handlers=broken, sleep=lambda _: None,
    )  # fmt: skip
    moto = moto_sfn.run_on_moto(
        moto_definition(),
        {**lambda_handlers(moto_ws), **broken},
        {CALCULATION_JOB: calculation_job(lambda: None, FakeCalculation(fail_with=failure))},
        input=request_input,
        name="x1",
    )
    # THEN both take the same path to the same result
    assert local.status == ("SUCCEEDED" if case in ("published", "dry-run") else "FAILED")
    assert moto.status == local.status
    assert moto.entered_states == local.entered_states
    if broken:  # no Catch on the failure handler: the execution fails in it, where redrive resumes
        assert local.entered_states[-1] == FAILURE_STATE
    assert without_locations(moto.output) == without_locations(local.output)
    assert moto.error == local.error
    if case != "calculation-fails":  # a failed Glue run's description differs between the two
        assert moto.cause == local.cause
    for workspace in (local_ws, moto_ws):
        record = workspace.database.runs.get_run("x1")
        opened = case != "invalid-batch"
        assert (record is not None) == opened
        if record is not None:  # a failure not recorded leaves the run for a redrive to record
            assert record.state == ("RUNNING" if broken else local.status)


def test_fail_states_never_raise_a_reserved_error_name() -> None:
    fails = {name: s for name, s in DEFINITION["States"].items() if s["Type"] == "Fail"}
    assert set(fails) == {"Settlement failed"}
    for state in fails.values():
        assert not state.get("Error", "").startswith("States.")
    # the dynamic name comes from record_failure, which renames States.* errors
    assert fails["Settlement failed"]["ErrorPath"] == "$.error"
