"""`settle generate` through the Typer app, as an operator types it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from settlement.cli.app import app

runner = CliRunner()


def test_generate_writes_batches_reference_and_a_summary(tmp_path: Path) -> None:
    # GIVEN an empty output directory
    out = tmp_path / "data"
    # WHEN generating 5,000 rows in batches of 2,000 with some invalid rows, as Parquet
    result = runner.invoke(
        app,
        [
            "generate", "--rows", "5000", "--seed", "4", "--period", "2026-07",
            "--invalid-share", "0.1", "--batch-rows", "2000", "--format", "parquet",
            "--out", str(out),
        ],
    )  # fmt: skip
    # THEN it succeeds, writes three batches with manifests and the reference files
    assert result.exit_code == 0, result.output
    manifests = sorted((out / "transactions").glob("*.manifest.json"))
    assert [path.name for path in manifests] == [
        f"2026-07-dms-000{n}.manifest.json" for n in (1, 2, 3)
    ]
    assert sum(json.loads(path.read_text())["row_count"] for path in manifests) == 5_000
    assert (out / "reference" / "matrix.csv").is_file()
    assert (out / "reference" / "targets.csv").is_file()
    # AND the summary names the rows, batches and intended rejects
    assert "5,000 rows for 2026-07 in 3 batch(es)" in result.stdout
    assert "meant to be rejected: 500" in result.stdout
    assert "ALREADY_CANCELLED 45" in result.stdout


def test_a_bad_period_fails_with_one_line_on_stderr(tmp_path: Path) -> None:
    # GIVEN a period that is not a month WHEN generating
    result = runner.invoke(
        app, ["generate", "--rows", "10", "--period", "2026-7", "--out", str(tmp_path / "x")]
    )
    # THEN it is a usage error (exit 2) of exactly one line on stderr, and nothing is written
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: Invalid value: period must be YYYY-MM, got '2026-7' (try: settle generate --help)"
    ]
    assert not (tmp_path / "x").exists()


def test_an_unwritable_output_fails_cleanly(tmp_path: Path) -> None:
    # GIVEN an output path that is a file WHEN generating into it
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(
        app, ["generate", "--rows", "10", "--period", "2026-07", "--out", str(blocker)]
    )
    # THEN one error line names the path
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert str(blocker) in result.stderr
