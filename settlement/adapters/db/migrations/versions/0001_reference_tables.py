"""Reference data: matrix and target versions with their rows (append-only).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settlement.adapters.db.types import ExactDecimal, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _version_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("uploaded_at", UtcDateTime, nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("row_count", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "matrix_versions", *_version_columns(), sa.Column("markets", sa.JSON, nullable=False)
    )
    op.create_table(
        "matrix_rows",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("matrix_versions.id"), nullable=False),
        sa.Column("market", sa.String(200), nullable=False),
        sa.Column("series", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("component", sa.String(10), nullable=False),
        sa.Column("min_attainment", ExactDecimal(12, 6), nullable=False),
        sa.Column("rate", ExactDecimal(7, 6), nullable=False),
        sa.Column("amount_per_unit", ExactDecimal(18, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date, nullable=True),
    )
    op.create_index("ix_matrix_rows_version_market", "matrix_rows", ["version_id", "market"])
    op.create_table(
        "matrix_market_versions",
        sa.Column("market", sa.String(200), primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("matrix_versions.id"), primary_key=True),
    )
    op.create_table("target_versions", *_version_columns())
    op.create_table(
        "target_rows",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("target_versions.id"), nullable=False),
        sa.Column("market", sa.String(200), nullable=False),
        sa.Column("dealer_id", sa.String(200), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("target_units", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_target_rows_period_dealer_version",
        "target_rows",
        ["period", "dealer_id", "version_id"],
    )


def downgrade() -> None:
    for table in (
        "target_rows",
        "target_versions",
        "matrix_market_versions",
        "matrix_rows",
        "matrix_versions",
    ):
        op.drop_table(table)
