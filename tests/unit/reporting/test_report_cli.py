"""settle report RUN_ID: writes the HTML file and prints its path; a missing run fails clearly."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from settlement.cli import report
from tests.unit.reporting.conftest import RunFixture


def settle() -> typer.Typer:
    app = typer.Typer()
    report.register(app)

    @app.callback()
    def _root() -> None:
        """Keep ``report`` a sub-command even when it is the only one."""

    return app


def test_report_is_written_to_out_and_its_path_printed(
    finished_run: RunFixture, tmp_path: Path
) -> None:
    # WHEN `settle report RUN --out FILE --home HOME`
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        settle(),
        ["report", finished_run.run_id, "--out", str(out), "--home", str(finished_run.home)],
    )
    # THEN it exits 0, prints the path, and the file holds the run's figures
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out.resolve())
    assert ">12002.24<" in out.read_text(encoding="utf-8")


def test_default_location_is_inside_home(finished_run: RunFixture) -> None:
    result = CliRunner().invoke(
        settle(), ["report", finished_run.run_id, "--home", str(finished_run.home)]
    )
    assert result.exit_code == 0, result.output
    expected = (finished_run.home / "reports" / f"{finished_run.run_id}.html").resolve()
    assert result.stdout.strip() == str(expected)
    assert expected.exists()


def test_missing_run_fails_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    # GIVEN an empty workspace
    out = tmp_path / "report.html"
    # WHEN reporting on an unknown run
    result = CliRunner().invoke(
        settle(), ["report", "no-such-run", "--out", str(out), "--home", str(tmp_path / "home")]
    )
    # THEN exit ≠ 0, one line on stderr naming the run, no file
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: run no-such-run not found in the data store")
    assert not out.exists()


def test_out_as_an_existing_directory_writes_the_run_report_inside(
    finished_run: RunFixture, tmp_path: Path
) -> None:
    # GIVEN an existing directory
    directory = tmp_path / "reports"
    directory.mkdir()
    # WHEN it is given as --out
    result = CliRunner().invoke(
        settle(),
        ["report", finished_run.run_id, "--out", str(directory), "--home", str(finished_run.home)],
    )
    # THEN the report is <run_id>.html inside it, and nothing else is left there
    assert result.exit_code == 0, result.output
    written = directory / f"{finished_run.run_id}.html"
    assert result.stdout.strip() == str(written.resolve())
    assert [p.name for p in directory.iterdir()] == [written.name]


def test_an_unwritable_target_fails_in_one_line_and_leaves_nothing(
    finished_run: RunFixture, tmp_path: Path
) -> None:
    # GIVEN a target whose parent is a file
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    # WHEN the report is written under it
    result = CliRunner().invoke(
        settle(),
        ["report", finished_run.run_id, "--out", str(blocker / "r.html"), "--home",
         str(finished_run.home)],
    )  # fmt: skip
    # THEN one line names the target, and no temporary file is left
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write the report to {blocker / 'r.html'}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
