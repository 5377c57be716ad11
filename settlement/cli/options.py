"""Options every command shares: where the workspace is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from settlement.config import Settings, load_settings

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="SETTLE_HOME", help="Workspace directory (default ~/.settle)."),
]


def settings_for(home: Path | None) -> Settings:
    return load_settings(home)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def require_file(file: Path) -> None:
    """Fail in one line unless ``file`` is a readable regular file."""
    if file.is_dir():
        raise fail(f"{file}: is a directory, not a file")
    if not file.is_file():
        raise fail(f"{file}: no such file")
