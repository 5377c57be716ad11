"""The published ledger: the ``LedgerRepository`` port."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
from pyarrow import fs as pafs  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Table, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine

from settlement.adapters.db.bulk import copy_into, is_postgresql
from settlement.adapters.db.tables import published_ledger
from settlement.adapters.db.types import utc_now
from settlement.domain.ports import LedgerEntry
from settlement.domain.snapshot import LEDGER_SCHEMA

VALUE_COLUMNS = [field.name for field in LEDGER_SCHEMA][1:]
STAGE_TABLE = "published_ledger_stage"
APPLY_CHUNK_ROWS = 50_000
CENT = Decimal("0.01")


class SqlLedgerRepository:
    """What has been published to Core View, per transaction (spec §5)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def export_snapshot(self, path: str, *, filesystem: pafs.FileSystem | None = None) -> int:
        """Write the whole ledger to one Parquet file (schema of docs/architecture.md).

        Parameters
        ----------
        path
            Where to write: a path on ``filesystem``, or a local path / URI when it is ``None``.
        filesystem
            The pyarrow filesystem of the data store (S3 or local).

        Returns
        -------
        int
            The number of rows written (the file exists, with its schema, even when 0).
        """
        columns = [published_ledger.c[name] for name in LEDGER_SCHEMA.names]
        query = select(*columns).order_by(published_ledger.c.transaction_id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        table = pa.Table.from_pylist([row._asdict() for row in rows], schema=LEDGER_SCHEMA)
        if filesystem is None:
            filesystem, path = _filesystem_of(path)
        if isinstance(filesystem, pafs.LocalFileSystem):
            filesystem.create_dir(path.rsplit("/", 1)[0] or "/", recursive=True)
        pq.write_table(table, path, filesystem=filesystem)
        return int(table.num_rows)

    def apply_deltas(self, run_id: str, entries: Iterable[LedgerEntry]) -> int:
        """Upsert the new absolute values per transaction; idempotent.

        Returns
        -------
        int
            How many ledger rows were inserted or changed (0 when applied a second time).
        """
        now = utc_now()
        changed = 0
        with self._engine.begin() as connection:
            on_postgresql = is_postgresql(connection)
            # Chunks keep memory flat for a 10M-delta month; one transaction keeps it atomic.
            for chunk in batched(entries, APPLY_CHUNK_ROWS):
                rows = [
                    _ledger_values(entry, run_id, now) for entry in _last_per_transaction(chunk)
                ]
                if on_postgresql:
                    changed += _upsert_postgresql(connection, rows)
                else:
                    changed += _upsert_sqlite(connection, published_ledger, rows)
        return changed

    def entries(self) -> list[LedgerEntry]:
        """The whole ledger (for reports and tests)."""
        columns = [published_ledger.c[name] for name in LEDGER_SCHEMA.names]
        query = select(*columns).order_by(published_ledger.c.transaction_id)
        with self._engine.connect() as connection:
            return [LedgerEntry(**row._asdict()) for row in connection.execute(query)]


def _filesystem_of(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        filesystem, inner = pafs.FileSystem.from_uri(path)
        return filesystem, str(inner)
    return pafs.LocalFileSystem(), path


def batched(entries: Iterable[LedgerEntry], size: int) -> Iterator[list[LedgerEntry]]:
    """Consecutive chunks of at most ``size`` entries (``itertools.batched`` is Python 3.12)."""
    iterator = iter(entries)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _last_per_transaction(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """One entry per transaction (the last given wins), as ON CONFLICT needs unique keys."""
    return list({entry.transaction_id: entry for entry in entries}.values())


def _ledger_values(entry: LedgerEntry, run_id: str, now: Any) -> dict[str, Any]:
    for name in ("base_amount", "bonus_amount"):
        amount: Decimal = getattr(entry, name)
        if amount != amount.quantize(CENT):  # NUMERIC(18,2) would round it silently
            raise ValueError(f"{entry.transaction_id}: {name} {amount} has more than 2 decimals")
    return {
        "transaction_id": entry.transaction_id,
        "period": entry.period,
        "event_type": entry.event_type,
        "original_transaction_id": entry.original_transaction_id,
        "dealer_id": entry.dealer_id,
        "market": entry.market,
        "currency": entry.currency,
        "base_amount": entry.base_amount,
        "bonus_amount": entry.bonus_amount,
        "settled": entry.settled,
        "last_run_id": run_id,
        "updated_at": now,
    }


def _upsert_postgresql(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """COPY into a transaction-local staging table, then one INSERT … ON CONFLICT DO UPDATE."""
    connection.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} "
            "(LIKE published_ledger INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    columns = list(rows[0].keys())
    copy_into(connection, STAGE_TABLE, columns, rows)
    changed = " OR ".join(
        f"published_ledger.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in VALUE_COLUMNS
    )
    assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns[1:])
    result = connection.execute(
        text(
            f"INSERT INTO published_ledger ({', '.join(columns)}) "
            f"SELECT {', '.join(columns)} FROM {STAGE_TABLE} "
            f"ON CONFLICT (transaction_id) DO UPDATE SET {assignments} WHERE {changed}"
        )
    )
    connection.execute(text(f"TRUNCATE {STAGE_TABLE}"))  # ready for the next chunk
    return int(result.rowcount)


def _upsert_sqlite(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """The same semantics as on PostgreSQL through SQLite's own upsert."""
    statement = sqlite.insert(table)
    excluded = statement.excluded
    changed = or_(*(table.c[name].is_distinct_from(excluded[name]) for name in VALUE_COLUMNS))
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.transaction_id],
        set_={name: excluded[name] for name in rows[0] if name != "transaction_id"},
        where=changed,
    )
    return int(connection.execute(statement, [dict(row) for row in rows]).rowcount)
