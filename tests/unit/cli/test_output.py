"""Command output never cuts a value short: off a terminal, or on a narrow one."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from settlement.cli.output import OFF_TERMINAL_WIDTH, make_console, plain, value_table

AMOUNTS = ["1035113.27", "952985.10", "-613371.05"]


def _digits(text: str) -> int:
    return sum(character.isdigit() for character in text)


def test_off_a_terminal_the_console_has_room(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN output that is not a terminal (pytest captures it) and no COLUMNS setting
    monkeypatch.delenv("COLUMNS", raising=False)
    # WHEN a command builds its consoles
    out, err = make_console(), make_console(stderr=True)
    # THEN they are wide, not Rich's 80 columns
    assert out.width == err.width == OFF_TERMINAL_WIDTH


def test_columns_still_decides_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an operator who set COLUMNS
    monkeypatch.setenv("COLUMNS", "100")
    # WHEN a console is built
    # THEN their width wins
    assert make_console().width == 100


def test_a_narrow_terminal_folds_cells_instead_of_eliding_them() -> None:
    # GIVEN a table of dealers and amounts, far wider than a 30-column terminal
    table = value_table("dealer_id", "market", "currency", "total", numeric={"total"})
    for number, amount in enumerate(AMOUNTS):
        table.add_row(f"D{number:09d}", "DE", "EUR", amount)
    buffer = io.StringIO()
    # WHEN it is printed there
    Console(file=buffer, width=30).print(table)
    # THEN nothing is elided: every digit of every value is on screen
    printed = buffer.getvalue()
    assert "…" not in printed
    assert _digits(printed) == sum(_digits(a) for a in AMOUNTS) + 9 * len(AMOUNTS)


def test_cells_and_plain_values_are_never_read_as_markup() -> None:
    # GIVEN values a file or an operator wrote that look like Rich styling
    values = ["[/x]", "[bold]D1", "[red]"]
    table = value_table("value", title="[/title]")
    for value in values:
        table.add_row(value)
    # WHEN they are printed, in a table and inside a styled line
    console = Console(file=io.StringIO(), width=80)
    console.print(table)
    console.print(f"[dim]requested by {plain('[/ops]')}[/]")
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    # THEN each shows exactly as written
    for value in [*values, "[/title]", "requested by [/ops]"]:
        assert value in printed
