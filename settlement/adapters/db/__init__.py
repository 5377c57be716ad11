"""The database adapter: SQLAlchemy Core tables, repositories and Alembic migrations.

``Database.from_url(url)`` then ``.migrate()``; the repositories are ``.reference``, ``.runs``
(``RunRepository``), ``.ledger`` (``LedgerRepository``) and ``.acks`` (``PublishAckStore``).
"""

from settlement.adapters.db.database import Database

__all__ = ["Database"]
