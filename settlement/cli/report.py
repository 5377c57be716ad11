"""``settle report RUN_ID``: the self-contained HTML report of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from settlement.bootstrap import build_adapters
from settlement.cli.options import HomeOption, fail, settings_for
from settlement.reporting import ReportDataError, RunNotFoundError, write_report

OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="HTML file to write (default <home>/reports/<run_id>.html)."),
]


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command("report")(report)


def report(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to report on.")],
    out: OutOption = None,
    home: HomeOption = None,
) -> None:
    """Write the HTML report of RUN_ID (one file, opens offline) and print its path."""
    settings = settings_for(home)
    store = build_adapters(settings).store
    target = out or settings.home / "reports" / f"{run_id}.html"
    try:
        written = write_report(store, run_id, target)
    except (RunNotFoundError, ReportDataError) as error:
        raise fail(str(error)) from error
    except OSError as error:
        raise fail(f"cannot write the report to {target}: {error.strerror or error}") from None
    typer.echo(str(written))
