"""Runs, period locks, the published ledger and Core View acknowledgements.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settlement.adapters.db.types import ExactDecimal, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("periods", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("step_timings", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_table(
        "period_locks",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("run_id", sa.String(200), sa.ForeignKey("runs.run_id"), nullable=False),
    )
    op.create_table(
        "published_ledger",
        sa.Column("transaction_id", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("original_transaction_id", sa.String(200), nullable=True),
        sa.Column("dealer_id", sa.String(200), nullable=False),
        sa.Column("market", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("base_amount", ExactDecimal(18, 2), nullable=False),
        sa.Column("bonus_amount", ExactDecimal(18, 2), nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False),
        sa.Column("last_run_id", sa.String(200), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "publish_acks",
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("acked_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("publish_acks", "published_ledger", "period_locks", "runs"):
        op.drop_table(table)
