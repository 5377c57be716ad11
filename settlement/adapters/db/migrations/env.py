"""Alembic environment: always run programmatically by ``Database.migrate`` on its connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from settlement.adapters.db.tables import metadata


def run_migrations_online() -> None:
    connection: Connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
