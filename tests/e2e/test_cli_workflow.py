"""``settle submit | run | runs | show`` through the command line (no Spark needed here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lambdas import open_run
from settlement.bootstrap import Adapters
from settlement.cli.app import app
from settlement.config import load_settings
from tests.fixtures.workflow import batch_bytes, sale

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("SETTLE_HOME", "SETTLE_DATA_STORE", "SETTLE_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "home"


def test_submit_stores_the_batch_with_its_manifest(home: Path, tmp_path: Path) -> None:
    # GIVEN a batch file
    file = tmp_path / "oct-1.csv"
    file.write_bytes(batch_bytes([sale(1), sale(2)]))
    # WHEN it is submitted
    result = runner.invoke(app, ["submit", str(file), "--period", "2026-10", "--home", str(home)])
    # THEN the data file and a matching manifest are in the landing prefix
    assert result.exit_code == 0, result.output
    store = Adapters(load_settings(home)).store
    manifest = store.read_json("incoming/transactions/oct-1.manifest.json")
    assert (manifest["row_count"], manifest["period"], manifest["source"]) == (2, "2026-10", "cli")
    assert store.read_bytes("incoming/transactions/oct-1.csv") == file.read_bytes()


def test_submit_refuses_a_file_with_an_unknown_column(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "bad.csv"
    file.write_text("transaction_id,colour\nT1,red\n")
    result = runner.invoke(app, ["submit", str(file), "--period", "2026-10", "--home", str(home)])
    assert result.exit_code != 0
    assert "adds unknown column(s) colour" in result.output
    assert not Adapters(load_settings(home)).store.exists("incoming/transactions/bad.csv")


@pytest.mark.parametrize(
    "command", [["submit", "--period", "2026-10"], ["upload", "--kind", "matrix"]]
)
@pytest.mark.parametrize(
    ("name", "problem"), [("nope.csv", "no such file"), ("dir", "is a directory, not a file")]
)
def test_a_file_argument_that_is_not_a_file_says_so_in_one_line(
    home: Path, tmp_path: Path, command: list[str], name: str, problem: str
) -> None:
    # GIVEN a path that does not exist, or is a directory
    (tmp_path / "dir").mkdir()
    path = tmp_path / name
    # WHEN it is submitted or uploaded
    verb, *options = command
    result = runner.invoke(app, [verb, str(path), *options, "--home", str(home)])
    # THEN one line says what the path is instead
    assert result.exit_code == 1
    assert result.stderr == f"error: {path}: {problem}\n"


def test_a_refused_run_exits_non_zero_with_one_line_naming_the_holder(home: Path) -> None:
    # GIVEN October held by a running run
    adapters = Adapters(load_settings(home))
    open_run.handle({"run_id": "run-holder", "periods": ["2026-10"]}, adapters)
    # WHEN an operator starts a run for it
    result = runner.invoke(app, ["run", "--period", "2026-10", "--home", str(home)])
    # THEN it fails at once, the reason naming the holder
    assert result.exit_code == 1
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "PeriodsHeldError" in error_lines[0]
    assert "run-holder" in error_lines[0]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [([], "give --period"), (["--from", "2026-10-01"], "--from and --to go together")],
)
def test_run_needs_periods_or_a_whole_range(home: Path, arguments: list[str], reason: str) -> None:
    # GIVEN neither periods nor a range, or half a range WHEN run THEN a usage error (exit 2)
    result = runner.invoke(app, ["run", *arguments, "--home", str(home)])
    assert result.exit_code == 2
    assert reason in result.output


def test_runs_and_show_print_json(home: Path) -> None:
    adapters = Adapters(load_settings(home))
    open_run.handle({"run_id": "run-a", "periods": ["2026-10"], "requested_by": "ops"}, adapters)
    listed = runner.invoke(app, ["runs", "--json", "--home", str(home)])
    assert listed.exit_code == 0, listed.output
    assert [run["run_id"] for run in json.loads(listed.output)] == ["run-a"]
    shown = runner.invoke(app, ["show", "run-a", "--json", "--home", str(home)])
    document = json.loads(shown.output)
    assert (document["run"]["state"], document["run"]["requested_by"]) == ("RUNNING", "ops")
    missing = runner.invoke(app, ["show", "nope", "--home", str(home)])
    assert missing.exit_code == 1
    assert "no run nope" in missing.output
