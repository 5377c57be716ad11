"""The schema as SQLAlchemy Core tables; the migrations create exactly these.

Reference versions are append-only: the code has no UPDATE or DELETE path for them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from settlement.adapters.db.types import ExactDecimal, UtcDateTime
from settlement.domain.reference.service import FILE_NAME_MAX_CHARS, UPLOADED_BY_MAX_CHARS

metadata = MetaData()


def _version_header() -> list[Column[Any]]:
    """Who uploaded which file when: the same audit columns on every kind of version."""
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("uploaded_by", String(UPLOADED_BY_MAX_CHARS), nullable=False),
        Column("uploaded_at", UtcDateTime, nullable=False),
        Column("file_name", String(FILE_NAME_MAX_CHARS), nullable=False),
        Column("sha256", String(64), nullable=False, unique=True),
        Column("row_count", Integer, nullable=False),
    ]


# --------------------------------------------------------------------------- 0001 reference
matrix_versions = Table(
    "matrix_versions",
    metadata,
    *_version_header(),
    Column("markets", JSON, nullable=False),
)

matrix_rows = Table(
    "matrix_rows",
    metadata,
    Column("version_id", Integer, ForeignKey("matrix_versions.id"), nullable=False),
    Column("market", String(200), nullable=False),
    Column("series", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("component", String(10), nullable=False),
    Column("min_attainment", ExactDecimal(12, 6), nullable=False),
    Column("rate", ExactDecimal(7, 6), nullable=False),
    Column("amount_per_unit", ExactDecimal(18, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Index("ix_matrix_rows_version_market", "version_id", "market"),
)

# One row per (market, version that contains it): the active version of a market is the
# highest version id listed for it, answered without scanning matrix_rows.
matrix_market_versions = Table(
    "matrix_market_versions",
    metadata,
    Column("market", String(200), primary_key=True),
    Column("version_id", Integer, ForeignKey("matrix_versions.id"), primary_key=True),
)

target_versions = Table(
    "target_versions",
    metadata,
    *_version_header(),
)

target_rows = Table(
    "target_rows",
    metadata,
    Column("version_id", Integer, ForeignKey("target_versions.id"), nullable=False),
    Column("market", String(200), nullable=False),
    Column("dealer_id", String(200), nullable=False),
    Column("period", String(7), nullable=False),
    Column("target_units", BigInteger, nullable=False),
    Index("ix_target_rows_period_dealer_version", "period", "dealer_id", "version_id"),
)

# --------------------------------------------------------------------------- 0002 runs, ledger
runs = Table(
    "runs",
    metadata,
    Column("run_id", String(200), primary_key=True),
    Column("periods", JSON, nullable=False),
    Column("state", String(20), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("step_timings", JSON, nullable=False),
    Column("summary", JSON, nullable=False),
    Index("ix_runs_created_at", "created_at"),
)

period_locks = Table(
    "period_locks",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("run_id", String(200), ForeignKey("runs.run_id"), nullable=False),
)

published_ledger = Table(
    "published_ledger",
    metadata,
    Column("transaction_id", String(200), primary_key=True),
    Column("period", String(7), nullable=False),
    Column("event_type", String(20), nullable=False),
    Column("original_transaction_id", String(200), nullable=True),
    Column("dealer_id", String(200), nullable=False),
    Column("market", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("base_amount", ExactDecimal(18, 2), nullable=False),
    Column("bonus_amount", ExactDecimal(18, 2), nullable=False),
    Column("settled", Boolean, nullable=False),
    Column("last_run_id", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

publish_acks = Table(
    "publish_acks",
    metadata,
    Column("run_id", String(200), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("records", Integer, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("acked_at", UtcDateTime, nullable=False),
)

REFERENCE_TABLES = (
    matrix_versions,
    matrix_rows,
    matrix_market_versions,
    target_versions,
    target_rows,
)
RUN_TABLES = (runs, period_locks, published_ledger, publish_acks)
