"""The ``settle`` command line (spec §9). Each topic module registers its own commands."""

from __future__ import annotations

import os

import typer

from settlement.cli import coreview, generate, reference, report, workflow

app = typer.Typer(
    name="settle",
    help="Commission settlement for the dealer network, on one machine or against AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for topic in (generate, reference, workflow, report, coreview):
    topic.register(app)


def main() -> None:
    # The handlers log JSON for CloudWatch; on a terminal only their warnings are worth a line.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    app()
