"""`settle run`, `show`, `runs` and `generate` through the real CLI on a fresh workspace.

The calculation is the in-process stand-in of tests/fixtures/workflow.py (no Spark): these tests
are about what the commands tell the operator, not about commissions.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import settlement.cli.workflow
import state_machine.local
from lambdas import open_run
from settlement.bootstrap import Adapters
from settlement.cli.app import app
from settlement.cli.workflow import interrupted_line
from tests.fixtures.workflow import FakeCalculation, database_down, put_batch, sale

SEPTEMBER_AND_OCTOBER = ["2026-09", "2026-10"]
REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def stand_in_calculation(monkeypatch: pytest.MonkeyPatch) -> None:
    """`settle run` runs the real state machine with the stand-in job and no retry sleeps."""
    real = state_machine.local.run_workflow
    stand_in = functools.partial(real, calculate=FakeCalculation(), sleep=lambda _: None)
    monkeypatch.setattr(state_machine.local, "run_workflow", stand_in)


def settle(workspace: Adapters, *arguments: str) -> tuple[int, str, str]:
    home = str(workspace.settings.home)
    result = CliRunner().invoke(app, [*arguments, "--home", home])
    return result.exit_code, result.stdout, result.stderr


def listed_run_ids(workspace: Adapters) -> list[str]:
    code, out, _ = settle(workspace, "runs", "--json")
    assert code == 0
    return [run["run_id"] for run in json.loads(out)]


def error_line(err: str) -> str:
    """The command's one ``error:`` line, the last on stderr.

    A Lambda's logger may still hold the stream of an earlier in-process invocation and add
    "--- Logging error ---" noise above it; the real command never runs that way.
    """
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert err.splitlines()[-1] == errors[0], err
    return errors[0]


def calculation_fails(monkeypatch: pytest.MonkeyPatch, **options: Any) -> None:
    """`settle run` runs the state machine with a calculation that fails ("disk full")."""
    failing = functools.partial(
        state_machine.local.run_workflow.func,  # type: ignore[attr-defined]
        calculate=FakeCalculation(fail_with=RuntimeError("disk full")),
        sleep=lambda _: None,
        **options,
    )
    monkeypatch.setattr(state_machine.local, "run_workflow", failing)


def run_id_of(out: str) -> str:
    """The run id `settle run` printed (its own line, after the progress lines)."""
    ids = [line for line in out.splitlines() if line.startswith("run-")]
    assert len(ids) == 1, out
    return ids[0]


# --------------------------------------------------------------------------- dry runs
def test_show_of_a_dry_run_gives_what_would_be_published(workspace: Adapters) -> None:
    # GIVEN a batch of two sales (10.00 + 20.00 of BASE at the stand-in's 1 %)
    put_batch(workspace.store, "b1", [sale(1, price="1000.00"), sale(2, price="2000.00")])
    # WHEN a dry run is made and shown
    code, out, err = settle(workspace, "run", "--period", "2026-10", "--dry-run")
    assert code == 0, err
    run_id = run_id_of(out)
    show_code, shown, _ = settle(workspace, "show", run_id)
    # THEN the computed deltas are there, labelled as what would be published, not as published
    assert show_code == 0
    assert "would publish (dry run)" in shown
    assert "delta records that would publish (dry run): 2; nothing was published" in shown
    assert "30.00" in shown
    assert "published delta" not in shown
    assert "delta records published" not in shown


def test_the_run_report_of_a_dry_run_keeps_its_computed_delta_totals(
    workspace: Adapters,
) -> None:
    # GIVEN a batch of two sales
    put_batch(workspace.store, "b1", [sale(1, price="1000.00"), sale(2, price="2000.00")])
    # WHEN a dry run is made and shown as JSON
    _, out, _ = settle(workspace, "run", "--period", "2026-10", "--dry-run")
    _, shown, _ = settle(workspace, "show", run_id_of(out), "--json")
    report: dict[str, Any] = json.loads(shown)["report"]
    # THEN nothing counts as published, and the computed figures are in the report
    assert (report["published"], report["records"]) == ([], 0)
    assert report["computed_delta_records"] == 2
    assert report["computed_delta_totals"] == [
        {"currency": "EUR", "base_delta": "30.00", "bonus_delta": "0.00", "delta": "30.00"}
    ]


def test_show_of_a_real_run_still_gives_what_was_published(workspace: Adapters) -> None:
    # GIVEN a batch of two sales
    put_batch(workspace.store, "b1", [sale(1, price="1000.00"), sale(2, price="2000.00")])
    # WHEN a real run is made and shown
    _, out, _ = settle(workspace, "run", "--period", "2026-10")
    _, shown, _ = settle(workspace, "show", run_id_of(out))
    # THEN the figures are labelled as published
    assert "published delta" in shown
    assert "delta records published: 2" in shown
    assert "dry run)" not in shown


# --------------------------------------------------------------------------- what a run says
def test_run_says_what_it_published_then_that_an_unchanged_re_run_publishes_nothing(
    workspace: Adapters,
) -> None:
    # GIVEN a batch of two sales (10.00 + 20.00 of BASE)
    put_batch(workspace.store, "b1", [sale(1, price="1000.00"), sale(2, price="2000.00")])
    # WHEN the period is run, then run again unchanged, then as a dry run
    first, second, dry = (
        settle(workspace, "run", "--period", "2026-10", *extra)[1]
        for extra in ([], [], ["--dry-run"])
    )
    # THEN each says in one line what it published, or that there was nothing to publish
    assert "published 2 delta records (EUR 30.00)" in first
    assert "nothing to publish: no transaction changed" in second
    assert "published" not in second.replace("nothing to publish", "")
    assert "dry run: 0 delta records would be published; nothing was" in dry


def test_a_period_without_batches_is_named_by_run_show_and_report(
    workspace: Adapters, tmp_path: Path
) -> None:
    # GIVEN no batch for October
    # WHEN October is run, shown and reported
    code, out, err = settle(workspace, "run", "--period", "2026-10")
    assert code == 0, err
    run_id = run_id_of(out)
    _, shown, _ = settle(workspace, "show", run_id)
    report_code, _, _ = settle(workspace, "report", run_id, "--out", str(tmp_path / "r.html"))
    # THEN each names the period and what settling it from nothing means
    line = "no batches for 2026-10: settled nothing there, so whatever was published for it"
    assert line in " ".join(out.split())
    assert line in " ".join(shown.split())
    assert report_code == 0
    html = (tmp_path / "r.html").read_text()
    assert "Without batches" in html
    assert "2026-10: no batch was submitted" in html


# --------------------------------------------------------------------------- refused runs
def _invalid_batch(workspace: Adapters) -> None:
    put_batch(workspace.store, "short", [sale(2), sale(3)])
    manifest = workspace.store.read_json("incoming/transactions/short.manifest.json")
    workspace.store.write_json(
        "incoming/transactions/short.manifest.json", {**manifest, "row_count": 3}
    )


def _periods_held(workspace: Adapters) -> None:
    put_batch(workspace.store, "b1", [sale(1)])
    open_run.handle({"run_id": "run-holder", "periods": SEPTEMBER_AND_OCTOBER}, workspace)


# A malformed period never gets this far: the command line refuses it (tests/unit/cli).
REFUSALS = {
    "invalid batch": (_invalid_batch, "2026-10", "InvalidBatchesError"),
    "periods held": (_periods_held, "2026-10", "run-holder"),
}


@pytest.mark.parametrize(("arrange", "period", "named"), REFUSALS.values(), ids=list(REFUSALS))
def test_a_refused_run_gives_no_run_id_and_one_line_saying_none_was_recorded(
    workspace: Adapters, arrange: Any, period: str, named: str
) -> None:
    # GIVEN a run that will be refused before it opens
    arrange(workspace)
    before = listed_run_ids(workspace)
    # WHEN it is started
    code, out, err = settle(workspace, "run", "--period", period)
    # THEN it fails with one line naming the reason, and prints no run id at all
    assert code == 1
    assert error_line(err).startswith("error: run refused, no run was recorded: ")
    assert named in error_line(err)
    assert not [line for line in out.splitlines() if line.startswith("run-")], out
    # AND the progress says the failure handler released nothing (not the holder's periods)
    assert (
        "✓ Record failure and release periods (the run never opened: it held nothing to release)"
        in out
    )
    # AND no run was added to the list
    assert listed_run_ids(workspace) == before


def test_a_run_that_opened_and_failed_prints_its_id_which_show_knows(
    workspace: Adapters, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a calculation that fails after the run opened
    put_batch(workspace.store, "b1", [sale(1)])
    calculation_fails(monkeypatch)
    # WHEN it is started
    code, out, err = settle(workspace, "run", "--period", "2026-10")
    # THEN it prints the run id, which show and runs know, and fails with one line
    run_id = run_id_of(out)
    assert code == 1
    assert error_line(err).startswith(f"error: run {run_id} failed: ")
    assert settle(workspace, "show", run_id)[0] == 0
    assert listed_run_ids(workspace) == [run_id]


def test_a_run_whose_failure_could_not_be_recorded_says_to_abandon_it(
    workspace: Adapters, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a calculation that fails while the failure handler cannot reach the database
    put_batch(workspace.store, "b1", [sale(1)])
    calculation_fails(monkeypatch, handlers={"record_failure": database_down})
    # WHEN it is started
    code, out, err = settle(workspace, "run", "--period", "2026-10")
    # THEN one line says the run still holds its periods, why, and what to do
    run_id = run_id_of(out)
    assert code == 1
    assert error_line(err) == (
        f"error: run {run_id} failed and recording the failure failed too (ConnectionError: "
        f"database unreachable); it still holds its periods: fix that, then "
        f"`settle abandon {run_id}`"
    )
    # AND the command it names releases them
    assert settle(workspace, "abandon", run_id)[0] == 0
    open_run.handle({"run_id": "run-next", "periods": ["2026-10"]}, workspace)


# --------------------------------------------------------------------------- --home everywhere
def test_generate_accepts_home_and_keeps_a_relative_out_in_the_current_directory(
    workspace: Adapters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a current directory apart from the workspace
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    # WHEN generate is given --home and a relative --out
    code, _, err = settle(
        workspace, "generate", "--rows", "20", "--period", "2026-10", "--out", "month"
    )
    # THEN it succeeds and writes under the current directory, not the workspace
    assert code == 0, err
    assert (here / "month" / "reference" / "matrix.csv").is_file()
    assert any((here / "month" / "transactions").iterdir())
    assert not (workspace.settings.home / "month").exists()


# --------------------------------------------------------------------------- abandoned runs
def test_abandon_releases_a_run_whose_process_was_killed(workspace: Adapters) -> None:
    # GIVEN a run left RUNNING by a killed process, holding October and the ledger lock
    open_run.handle({"run_id": "run-killed", "periods": ["2026-10"]}, workspace)
    # WHEN the operator abandons it
    code, out, _ = settle(workspace, "abandon", "run-killed")
    # THEN it is FAILED, says why, and a new run may publish October
    assert code == 0
    assert "run-killed marked FAILED" in out
    run = workspace.database.runs.get_run("run-killed")
    assert run is not None
    assert (run.state, "abandoned by the operator" in (run.error or "")) == ("FAILED", True)
    open_run.handle({"run_id": "run-next", "periods": ["2026-10"]}, workspace)
    # AND abandoning it again is refused in one line
    again, _, err = settle(workspace, "abandon", "run-killed")
    assert again == 1
    assert error_line(err) == (
        "error: run run-killed is FAILED: only a RUNNING run can be abandoned"
    )


def test_abandon_refuses_a_run_whose_process_is_alive(workspace: Adapters) -> None:
    # GIVEN a RUNNING run whose process is alive on this machine
    open_run.handle({"run_id": "run-live", "periods": ["2026-10"]}, workspace)
    with process_running("run-live") as process:
        # WHEN the operator abandons it
        code, _, err = settle(workspace, "abandon", "run-live")
        # THEN it is refused in one line naming the process, and the run keeps its periods
        assert code == 1
        assert error_line(err) == (
            f"error: run run-live is still running (process {process.pid} on this machine): "
            "interrupt it (Ctrl-C, or kill -INT), which marks it FAILED and releases its periods"
        )
        assert workspace.database.runs.get_run("run-live").state == "RUNNING"  # type: ignore[union-attr]
        # AND once the process is killed (no handler runs), abandoning it succeeds
        process.kill()
        process.wait(timeout=30)
    assert settle(workspace, "abandon", "run-live")[0] == 0


@contextlib.contextmanager
def process_running(run_id: str) -> Iterator[subprocess.Popen[str]]:
    """A separate process that runs ``run_id`` as `settle run` would (holds its run lock)."""
    script = (
        "import sys, time\n"
        "from state_machine.local import running_here\n"
        f"with running_here({run_id!r}):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPOSITORY, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


def test_an_interrupted_local_run_releases_what_it_holds(workspace: Adapters) -> None:
    # GIVEN a batch, and a calculation the operator interrupts (Ctrl-C)
    put_batch(workspace.store, "b1", [sale(1)])

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    # WHEN the local run is interrupted
    with pytest.raises(KeyboardInterrupt):
        state_machine.local.run_workflow(
            workspace, {"periods": ["2026-10"]}, run_id="run-ctrl-c", calculate=interrupted
        )
    # THEN the run is FAILED and another run may take October and publish
    run = workspace.database.runs.get_run("run-ctrl-c")
    assert run is not None
    assert run.state == "FAILED"
    assert "interrupted" in (run.error or "")
    open_run.handle({"run_id": "run-next", "periods": ["2026-10"]}, workspace)


def test_an_interrupted_settle_run_says_what_it_left_in_one_line(
    workspace: Adapters, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a calculation the operator interrupts (Ctrl-C)
    put_batch(workspace.store, "b1", [sale(1)])

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    stopped = functools.partial(
        state_machine.local.run_workflow.func,  # type: ignore[attr-defined]
        calculate=interrupted,
        sleep=lambda _: None,
    )
    monkeypatch.setattr(state_machine.local, "run_workflow", stopped)
    # WHEN `settle run` is interrupted
    code, _, err = settle(workspace, "run", "--period", "2026-10")
    # THEN it fails in one line naming the run it released
    [run_id] = listed_run_ids(workspace)
    assert code == 1
    assert error_line(err) == (
        f"error: interrupted (Ctrl-C): run {run_id} is FAILED, its periods released"
    )


def test_settle_run_interrupted_before_the_run_opened_says_nothing_was_held(
    workspace: Adapters, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run the operator interrupts before it opened
    def interrupted_at_once(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(state_machine.local, "run_workflow", interrupted_at_once)
    # WHEN `settle run` is interrupted
    code, _, err = settle(workspace, "run", "--period", "2026-10")
    # THEN one line says nothing was held, and no run was recorded
    assert code == 1
    assert error_line(err) == (
        "error: interrupted (Ctrl-C) before the run opened: nothing was held or published"
    )
    assert listed_run_ids(workspace) == []


def test_the_demo_keeps_to_its_own_workspace_whatever_is_configured(
    workspace: Adapters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a database, a data store and a Core View configured by the environment
    configured = {
        "SETTLE_DATABASE_URL": f"sqlite:///{tmp_path / 'production.db'}",
        "SETTLE_DATA_STORE": str(tmp_path / "production-store"),
        "SETTLE_COREVIEW_URL": "https://coreview.example.com",
    }
    for variable, value in configured.items():
        monkeypatch.setenv(variable, value)
    used: list[Adapters] = []

    def demo_story(adapters: Adapters, **_: Any) -> dict[str, str]:
        used.append(adapters)
        return {"first": "run-1", "second": "run-2"}

    monkeypatch.setattr(settlement.cli.workflow, "run_demo", demo_story)
    # WHEN the demo runs
    code, _, err = settle(workspace, "demo")
    # THEN it used only the embedded defaults inside <home>/demo, and said what it ignored
    assert code == 0, err
    demo_home = workspace.settings.home / "demo"
    [adapters] = used
    assert adapters.settings.database_url == f"sqlite:///{demo_home / 'settle.db'}"
    assert adapters.settings.data_store == str(demo_home / "store")
    assert adapters.settings.coreview_url == f"file://{demo_home / 'coreview'}"
    assert not (tmp_path / "production.db").exists()
    assert not (tmp_path / "production-store").exists()
    assert "the demo ignores SETTLE_DATA_STORE, SETTLE_DATABASE_URL, SETTLE_COREVIEW_URL" in err


def test_an_interrupted_run_that_kept_its_periods_says_so(workspace: Adapters) -> None:
    # GIVEN a run that ended FAILED keeping its locks (its publication unresolved)
    workspace.database.runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    workspace.database.runs.finish_run("r1", "FAILED", error="commit unknown", keep_locks=True)
    # WHEN the interrupted command describes it THEN it does not claim the periods are free
    assert interrupted_line(workspace, "r1") == (
        "interrupted (Ctrl-C): run r1 is FAILED and keeps its periods until its publication to "
        "Core View is settled (the next run of them does it; see `settle show r1`)"
    )
    # AND once released, it says so
    workspace.database.runs.release_locks("r1", note=" | released")
    assert interrupted_line(workspace, "r1") == (
        "interrupted (Ctrl-C): run r1 is FAILED, its periods released"
    )


def test_release_frees_the_periods_a_failed_run_kept_and_records_why(
    workspace: Adapters,
) -> None:
    # GIVEN a run that ended FAILED keeping its locks, and a running one
    runs = workspace.database.runs
    runs.open_run("r1", ["2026-10"], dry_run=False, requested_by="ops")
    runs.finish_run("r1", "FAILED", error="commit unknown", keep_locks=True)
    runs.open_run("r2", ["2026-11"], dry_run=True, requested_by="ops")
    home = str(workspace.settings.home)
    # WHEN an operator releases the running one THEN it is refused, nothing released
    refused = CliRunner().invoke(app, ["release", "r2", "--reason", "x", "--home", home])
    assert refused.exit_code == 1
    assert "run r2 is RUNNING and keeps no locks" in refused.output
    # WHEN the failed one is released, saying why
    reason = "INC-42: Core View reverted run r1 by hand"
    released = CliRunner().invoke(app, ["release", "r1", "--reason", reason, "--home", home])
    # THEN its periods are free, and the run records who decided it
    assert released.exit_code == 0, released.output
    assert not runs.holds_locks("r1")
    assert (runs.get_run("r1").error or "").endswith(f"locks released by hand: {reason}")  # type: ignore[union-attr]
    again = CliRunner().invoke(app, ["release", "r1", "--reason", reason, "--home", home])
    assert again.exit_code == 1
