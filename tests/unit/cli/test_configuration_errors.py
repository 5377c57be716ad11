"""Configuration that cannot be used fails in one line naming the file, variable or value."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.cli.app import app


def broken_toml(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    home.mkdir()
    (home / "settle.toml").write_text("data_store = [\n")
    return f"error: {home / 'settle.toml'} is not valid TOML: "


def unknown_setting(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    home.mkdir()
    (home / "settle.toml").write_text('datastore = "/tmp/x"\n')
    return f"error: {home / 'settle.toml'}: unknown settings ['datastore']"


def home_is_a_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    home.write_text("not a directory")
    return f"error: home {home} is a file, not a directory"


def unsupported_database(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SETTLE_DATABASE_URL", "mysql://ops:s3cret@db/settle")
    return "error: database URL mysql://ops:***@db/settle: only PostgreSQL and SQLite"


def not_a_database_url(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SETTLE_DATABASE_URL", "settle.db")
    return "error: database URL is not a URL like postgresql+pg8000://"


CASES: dict[str, Callable[[Path, pytest.MonkeyPatch], str]] = {
    "broken settle.toml": broken_toml,
    "unknown setting": unknown_setting,
    "home is a file": home_is_a_file,
    "unsupported database": unsupported_database,
    "not a database URL": not_a_database_url,
}


@pytest.mark.parametrize("make_case", CASES.values(), ids=list(CASES))
def test_unusable_configuration_is_one_clear_line(
    make_case: Callable[[Path, pytest.MonkeyPatch], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a configuration that cannot be used
    monkeypatch.delenv("SETTLE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    expected = make_case(home, monkeypatch)
    # WHEN any command reads it
    result = CliRunner().invoke(app, ["runs", "--home", str(home)])
    # THEN it exits 1 with one line that says what is wrong, and never shows the password
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert "s3cret" not in result.stderr


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    # GIVEN a port another process listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # WHEN the local Core View is asked to serve on it
        result = CliRunner().invoke(
            app, ["coreview", "serve", "--port", str(port), "--home", str(tmp_path)]
        )
    # THEN it exits 1 with one line naming the address, before announcing anything
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
