"""Matrix and target versions: append-only storage and the snapshot reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from settlement.adapters.db.bulk import bulk_insert
from settlement.adapters.db.tables import (
    matrix_market_versions,
    matrix_rows,
    matrix_versions,
    target_rows,
    target_versions,
)
from settlement.domain.reference.models import (
    MatrixRow,
    NewVersion,
    ReferenceKind,
    TargetRow,
    VersionInfo,
)


class SqlReferenceRepository:
    """Implements the ``ReferenceRepository`` port of ``settlement.domain.reference.service``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ----------------------------------------------------------------------- writes
    def add_matrix_version(
        self, header: NewVersion, rows: Sequence[MatrixRow]
    ) -> tuple[VersionInfo, bool]:
        """Store a matrix version and its rows in one transaction.

        Returns the version and ``True``, or the version already stored for the same sha256
        and ``False`` (an upload repeated, possibly concurrently).
        """
        markets = sorted({row.market for row in rows})
        try:
            with self._engine.begin() as connection:
                version_id = connection.execute(
                    insert(matrix_versions).returning(matrix_versions.c.id),
                    {**_header_values(header, len(rows)), "markets": markets},
                ).scalar_one()
                bulk_insert(connection, matrix_rows, [_matrix_values(version_id, r) for r in rows])
                connection.execute(
                    insert(matrix_market_versions),
                    [{"market": market, "version_id": version_id} for market in markets],
                )
        except IntegrityError:
            return self._existing("matrix", header.sha256), False
        return self._existing("matrix", header.sha256), True

    def add_target_version(
        self, header: NewVersion, rows: Sequence[TargetRow]
    ) -> tuple[VersionInfo, bool]:
        """Store a targets version and its rows in one transaction (see add_matrix_version)."""
        try:
            with self._engine.begin() as connection:
                version_id = connection.execute(
                    insert(target_versions).returning(target_versions.c.id),
                    _header_values(header, len(rows)),
                ).scalar_one()
                bulk_insert(connection, target_rows, [_target_values(version_id, r) for r in rows])
        except IntegrityError:
            return self._existing("targets", header.sha256), False
        return self._existing("targets", header.sha256), True

    def _existing(self, kind: ReferenceKind, sha256: str) -> VersionInfo:
        found = self.find_version(kind, sha256)
        if found is None:  # the IntegrityError was something else: let it surface
            raise LookupError(f"no {kind} version with sha256 {sha256} after insert")
        return found

    # ----------------------------------------------------------------------- reads
    def find_version(self, kind: ReferenceKind, sha256: str) -> VersionInfo | None:
        table = _versions_table(kind)
        with self._engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.sha256 == sha256)).first()
        return None if row is None else _version_info(kind, row)

    def list_versions(self, kind: ReferenceKind) -> list[VersionInfo]:
        table = _versions_table(kind)
        with self._engine.connect() as connection:
            rows = connection.execute(select(table).order_by(table.c.id)).all()
        return [_version_info(kind, row) for row in rows]

    def active_matrix(self) -> list[tuple[str, MatrixRow]]:
        """Rows of the active version of every market, with that version's id (one query)."""
        active = (
            select(
                matrix_market_versions.c.market,
                func.max(matrix_market_versions.c.version_id).label("version_id"),
            )
            .group_by(matrix_market_versions.c.market)
            .subquery()
        )
        query = (
            select(matrix_rows)
            .join(
                active,
                (matrix_rows.c.market == active.c.market)
                & (matrix_rows.c.version_id == active.c.version_id),
            )
            .order_by(matrix_rows.c.market, matrix_rows.c.version_id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [(str(row.version_id), _matrix_row(row)) for row in rows]

    def latest_targets(self, periods: Sequence[str]) -> list[tuple[str, TargetRow]]:
        """The latest uploaded target per (dealer_id, period) of ``periods`` (one query)."""
        latest = (
            select(
                target_rows.c.dealer_id,
                target_rows.c.period,
                func.max(target_rows.c.version_id).label("version_id"),
            )
            .where(target_rows.c.period.in_(list(periods)))
            .group_by(target_rows.c.dealer_id, target_rows.c.period)
            .subquery()
        )
        query = (
            select(target_rows)
            .join(
                latest,
                (target_rows.c.dealer_id == latest.c.dealer_id)
                & (target_rows.c.period == latest.c.period)
                & (target_rows.c.version_id == latest.c.version_id),
            )
            .order_by(target_rows.c.period, target_rows.c.dealer_id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            (
                str(row.version_id),
                TargetRow(row.market, row.dealer_id, row.period, int(row.target_units)),
            )
            for row in rows
        ]


def _versions_table(kind: ReferenceKind) -> Any:
    if kind == "matrix":
        return matrix_versions
    if kind == "targets":
        return target_versions
    raise ValueError(f"unknown reference kind {kind!r}")


def _header_values(header: NewVersion, row_count: int) -> dict[str, Any]:
    return {
        "uploaded_by": header.uploaded_by,
        "uploaded_at": header.uploaded_at,
        "file_name": header.file_name,
        "sha256": header.sha256,
        "row_count": row_count,
    }


def _matrix_values(version_id: int, row: MatrixRow) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "market": row.market,
        "series": row.series,
        "channel": row.channel,
        "component": row.component,
        "min_attainment": row.min_attainment,
        "rate": row.rate,
        "amount_per_unit": row.amount_per_unit,
        "currency": row.currency,
        "valid_from": row.valid_from,
        "valid_to": row.valid_to,
    }


def _target_values(version_id: int, row: TargetRow) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "market": row.market,
        "dealer_id": row.dealer_id,
        "period": row.period,
        "target_units": row.target_units,
    }


def _matrix_row(row: Row[Any]) -> MatrixRow:
    return MatrixRow(
        market=row.market,
        series=row.series,
        channel=row.channel,
        component=row.component,
        min_attainment=row.min_attainment,
        rate=row.rate,
        amount_per_unit=row.amount_per_unit,
        currency=row.currency,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
    )


def _version_info(kind: ReferenceKind, row: Row[Any]) -> VersionInfo:
    markets = tuple(row.markets) if kind == "matrix" else ()
    return VersionInfo(
        kind=kind,
        version_id=str(row.id),
        file_name=row.file_name,
        sha256=row.sha256,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        row_count=row.row_count,
        markets=markets,
    )
