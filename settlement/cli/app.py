"""The ``settle`` command line (spec §9). Each topic module registers its own commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from settlement.cli import coreview, generate, reference, report, workflow
from settlement.config import SettingsError

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


class OneLineErrorsGroup(TyperGroup):
    """The ``settle`` group: a usage error is one line on stderr, exit code 2 (spec §9).

    Click (through Typer) would print the usage, a hint and the reason in a box over several
    lines; an operator's script or log wants ``error: <reason> (try: settle show --help)``.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            outcome = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:  # Click's exceptions: usage errors and the like
            typer.echo(one_line_error(error), err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except SettingsError as error:  # already says which file, variable or value
            typer.echo(f"error: {error}", err=True)
            sys.exit(1)
        except Exception as error:  # anything unforeseen: still one line (SETTLE_DEBUG: trace)
            if os.environ.get("SETTLE_DEBUG"):
                raise
            typer.echo(f"error: {unexpected_error_line(error)}", err=True)
            sys.exit(1)
        # Without standalone mode Click answers the code of an explicit exit (``--help``,
        # ``typer.Exit``) and None when the command returned normally; Typer turns an
        # unhandled Ctrl-C into a silent exit 130.
        if outcome == INTERRUPTED:
            typer.echo("error: interrupted (Ctrl-C)", err=True)
        sys.exit(outcome if isinstance(outcome, int) else 0)


def unexpected_error_line(error: Exception) -> str:
    """``<Type>: <first line of the message>`` (a database error adds its SQL on later lines)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def one_line_error(error: typer.TyperException) -> str:
    """``error: <reason>`` on one line; a usage error also says where the help is."""
    context = getattr(error, "ctx", None)
    if type(error).__name__ == "NoArgsIsHelpError":
        reason = "Missing command."  # its message is the help, which Typer has already printed
    else:
        reason = " ".join(error.format_message().split())
    if context is None:
        return f"error: {reason}"
    help_options = sorted(context.command.get_help_option_names(context))
    hint = f" (try: {context.command_path} {help_options[0]})" if help_options else ""
    return f"error: {reason}{hint}"


app = typer.Typer(
    name="settle",
    cls=OneLineErrorsGroup,
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
