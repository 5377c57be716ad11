"""``settle generate``: synthetic batches, matrix and targets of any size (spec §9)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from settlement.cli.options import HomeOption, fail
from settlement.generator import GeneratedMonth, generate_month
from settlement.generator.month import DEFAULT_BATCH_ROWS


def register(app: typer.Typer) -> None:
    """Add ``settle generate`` to ``app``."""
    app.command("generate")(generate)


def generate(  # noqa: PLR0917 - Typer maps each parameter to an option
    rows: Annotated[int, typer.Option(help="Rows over all batches, invalid ones included.")],
    period: Annotated[str, typer.Option(help="The month to generate, YYYY-MM.")],
    out: Annotated[Path, typer.Option(help="Output directory (needs no workspace).")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same bytes.")] = 0,
    invalid_share: Annotated[
        float, typer.Option(help="Share of invalid rows (0-0.5), spread over every reason.")
    ] = 0.0,
    batch_rows: Annotated[int, typer.Option(help="Rows per batch file.")] = DEFAULT_BATCH_ROWS,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    source: Annotated[
        str, typer.Option(help="Sending system, part of the batch ids (letters, digits, _).")
    ] = "dms",
    home: HomeOption = None,
) -> None:
    """Write transaction batches with manifests, a commission matrix and sales targets.

    Generating needs no workspace: ``--home`` is accepted like on every command (spec §9) and
    changes nothing; a relative ``--out`` is relative to the current directory.
    """
    del home  # nothing of the workspace is read or written
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("generating {task.fields[period]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a stopped bar leaves a blank line in logs
    )
    try:
        with progress:  # generate_month validates its arguments before writing anything
            task = progress.add_task("rows", total=rows, period=period)
            month = generate_month(
                out,
                rows=rows,
                seed=seed,
                period=period,
                invalid_share=invalid_share,
                batch_rows=batch_rows,
                fmt=fmt,
                source=source,
                on_progress=lambda done: progress.advance(task, done),
            )
    except ValueError as error:  # an option's value: a usage error (exit 2), like Click's own
        raise typer.BadParameter(str(error)) from None
    except OSError as error:
        raise fail(f"cannot write under {out}: {error}") from None
    _print_summary(month, out)


def _print_summary(month: GeneratedMonth, out: Path) -> None:
    typer.echo(
        f"{month.rows:,} rows for {month.period} in {len(month.batches)} batch(es) "
        f"under {out / 'transactions'}"
    )
    typer.echo(
        f"  meant to settle: {month.valid_sales:,} sales, "
        f"{month.valid_cancellations:,} cancellations; meant to be rejected: "
        f"{month.rows_rejected:,}"
    )
    rejected = ", ".join(
        f"{reason} {count:,}" for reason, count in month.reason_counts.items() if count
    )
    if rejected:
        typer.echo(f"  rejects by reason: {rejected}")
    typer.echo(f"  matrix:  {month.matrix_path}")
    typer.echo(f"  targets: {month.targets_path} ({month.dealers:,} dealers)")
