"""How the commands print: consoles and tables that never cut a value short.

Rich assumes 80 columns when it does not write to a terminal (a log file, a pipe, CI) and
shrinks wide tables by eliding cells, so an amount could read ``103511…``. Money is read from
these tables, so off a terminal the consoles get room, and on a narrow terminal a cell folds
onto a second line instead of losing characters.

Values are data, never markup: a rate written ``[/x]`` or a path holding brackets is shown as
it is (table cells through :class:`ValueTable`, values inside a styled line through
:func:`plain`), not read as Rich styling, which would hide or reject it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

OFF_TERMINAL_WIDTH = 200


def _writes_to_terminal(stderr: bool) -> bool:
    stream = sys.stderr if stderr else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def make_console(*, stderr: bool = False) -> Console:
    """A console for a command's output (``stderr``: for its errors).

    Off a terminal it is :data:`OFF_TERMINAL_WIDTH` wide unless ``COLUMNS`` says otherwise.
    """
    wide = not _writes_to_terminal(stderr) and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=OFF_TERMINAL_WIDTH if wide else None)


def plain(value: object) -> str:
    """``value`` as literal text inside a line that uses markup."""
    return escape(str(value))


class ValueTable(Table):
    """A table of data: a string cell is shown as it is (style a cell by passing ``Text``)."""

    def add_row(self, *renderables: Any, **options: Any) -> None:
        cells = (Text(cell) if isinstance(cell, str) else cell for cell in renderables)
        super().add_row(*cells, **options)


def value_table(
    *headers: str, title: str | None = None, numeric: Collection[str] = ()
) -> ValueTable:
    """A table whose cells fold rather than elide; ``numeric`` headers are right-aligned."""
    table = ValueTable(title=None if title is None else Text(title), box=box.SIMPLE_HEAD)
    for header in headers:
        table.add_column(header, overflow="fold", justify="right" if header in numeric else "left")
    return table
