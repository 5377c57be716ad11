"""Loading many rows at once: ``COPY … FROM STDIN`` on PostgreSQL, executemany elsewhere.

pg8000 sends one statement per row for executemany, far too slow for a 100 000-row upload;
COPY streams them in one round trip.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection


def is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def bulk_insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column) into ``table`` in the caller's transaction."""
    if not rows:
        return
    if is_postgresql(connection):
        copy_into(connection, table.name, list(rows[0].keys()), rows)
    else:
        connection.execute(insert(table), list(rows))


def copy_into(
    connection: Connection,
    table_name: str,
    columns: list[str],
    rows: Iterable[Mapping[str, Any]],
) -> None:
    """``COPY table (columns) FROM STDIN`` in CSV format on the connection's transaction.

    Every value is written quoted and ``None`` as an unquoted ``\\N`` (the NULL marker), so an
    empty string, or the text ``\\N`` itself, stays text.
    """
    lines = (",".join(_csv_field(row[column]) for column in columns) + "\n" for row in rows)
    payload = io.BytesIO("".join(lines).encode("utf-8"))
    quoted = ", ".join(f'"{column}"' for column in columns)
    statement = f"COPY \"{table_name}\" ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with raw_cursor(connection) as cursor:
        cursor.execute(statement, stream=payload)


@contextmanager
def raw_cursor(connection: Connection) -> Iterator[Any]:
    """The driver's own cursor on the connection's transaction, closed afterwards.

    For what SQLAlchemy does not wrap: pg8000's COPY (its ``stream`` argument, unknown to the
    DB-API typing) and raw rows without per-value type conversion.
    """
    cursor: Any = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()


def _csv_field(value: Any) -> str:
    if value is None:
        return "\\N"
    kind = type(value)  # exact types first: this runs once per value of a 10M-row load
    if kind is str:
        text = value
    elif kind is Decimal:
        text = format(value, "f")
    elif kind is bool:
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    if '"' in text:
        text = text.replace('"', '""')
    return f'"{text}"'
