"""A usage error is one line on stderr with exit code 2 (spec §9); help still works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from settlement.cli.app import app

USAGE_ERRORS = {
    "missing argument": (["show"], "error: Missing argument 'RUN_ID'. (try: settle show --help)"),
    "missing option": (
        ["upload", "matrix.csv"],
        "error: Missing option '--kind'. (try: settle upload --help)",
    ),
    "not a number": (["runs", "--limit", "abc"], "error: Invalid value for '--limit'"),
    "no runs asked for": (["runs", "--limit", "0"], "error: Invalid value for '--limit'"),
    "unknown option": (["runs", "--bogus"], "error: No such option: --bogus"),
    "unknown command": (["bogus"], "error: No such command 'bogus'."),
    "sub-command option": (["coreview", "serve", "--port", "x"], "error: Invalid value"),
    "generator value": (
        ["generate", "--rows", "0", "--period", "2026-10", "--out", "x"],
        "error: Invalid value: rows must be at least 1, got 0",
    ),
    "fault rate": (["coreview", "serve", "--fail-rate", "2"], "error: Invalid value: fail_rate"),
    "port out of range": (
        ["coreview", "serve", "--port", "99999"],
        "error: Invalid value for '--port'",
    ),
    "no command": ([], "error: Missing command. (try: settle --help)"),
    "reference kind": (
        ["upload", "matrix.csv", "--kind", "prices"],
        "error: Invalid value for --kind: must be matrix or targets, not 'prices'"
        " (try: settle upload --help)",
    ),
    "listed kind": (["versions", "--kind", "prices"], "error: Invalid value for --kind"),
    "no such month": (
        ["run", "--period", "2026-13"],
        """error: Invalid value: "periods" holds values that are not YYYY-MM: ['2026-13']"""
        " (try: settle run --help)",
    ),
    "range backwards": (
        ["run", "--from", "2026-10-01", "--to", "2026-09-30"],
        "error: Invalid value: the range ends (2026-09-30) before it starts (2026-10-01)",
    ),
    "no such date": (
        ["run", "--from", "2026-02-30", "--to", "2026-03-01"],
        """error: Invalid value: "from" must be a date YYYY-MM-DD, got '2026-02-30'""",
    ),
}


@pytest.mark.parametrize(("arguments", "expected"), USAGE_ERRORS.values(), ids=list(USAGE_ERRORS))
def test_a_usage_error_is_one_line_on_stderr_with_exit_code_2(
    arguments: list[str], expected: str
) -> None:
    # GIVEN a command line Click cannot parse
    # WHEN settle runs it
    result = CliRunner().invoke(app, arguments)
    # THEN it exits 2 with exactly one line on stderr, naming the problem
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert "╭" not in result.stderr


@pytest.mark.parametrize(
    "arguments", [["--help"], ["show", "--help"], ["coreview", "serve", "--help"]]
)
def test_help_still_prints_on_stdout_and_exits_0(arguments: list[str]) -> None:
    # GIVEN a request for help
    # WHEN settle runs it
    result = CliRunner().invoke(app, arguments)
    # THEN the help is on stdout, nothing on stderr, and the exit code is 0
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    assert result.stderr == ""


def _leaf_commands() -> dict[str, list[str]]:
    """Every command's path (``coreview serve``) and its option names."""
    found: dict[str, list[str]] = {}

    def visit(command: Any, path: str) -> None:
        if isinstance(command, TyperGroup):
            for name, child in command.commands.items():
                visit(child, f"{path} {name}".strip())
            return
        found[path] = [name for param in command.params for name in param.opts]

    visit(get_command(app), "")
    return found


def test_every_command_accepts_home() -> None:
    # GIVEN every command of settle, sub-commands included
    commands = _leaf_commands()
    # WHEN their options are listed
    without_home = sorted(path for path, options in commands.items() if "--home" not in options)
    # THEN each one accepts --home (spec §9: every command works inside the workspace)
    assert "generate" in commands
    assert "coreview serve" in commands
    assert without_home == []


def test_an_unforeseen_error_is_one_line_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a command that meets an error nobody foresaw, with more lines of detail
    import settlement.cli.workflow

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the database is on fire\n[SQL: SELECT 1]")

    monkeypatch.delenv("SETTLE_DEBUG", raising=False)
    monkeypatch.setattr(settlement.cli.workflow, "build_adapters", broken)
    # WHEN the command runs
    result = CliRunner().invoke(app, ["runs", "--home", str(tmp_path)])
    # THEN one line names the error's type and first line, exit 1, no traceback
    assert result.exit_code == 1
    assert result.stderr == "error: RuntimeError: the database is on fire\n"


def test_ctrl_c_in_any_command_is_one_line_with_the_shell_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a command interrupted by the operator (Ctrl-C) where it has no handling of its own
    import settlement.cli.workflow

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(settlement.cli.workflow, "value_table", interrupted)
    # WHEN settle runs it
    result = CliRunner().invoke(app, ["runs", "--home", str(tmp_path)])
    # THEN it exits 130 with one line saying so
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted (Ctrl-C)\n"
