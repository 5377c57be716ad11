"""Core View acknowledgements: the ``PublishAckStore`` port."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from settlement.adapters.db.tables import publish_acks
from settlement.adapters.db.types import utc_now


class SqlPublishAckStore:
    """Which batches Core View acknowledged, so a re-driven publish resumes where it stopped."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acknowledged(self, run_id: str, part: int) -> dict[int, str]:
        """seq -> body sha256 of the acknowledged batches of one part."""
        query = select(publish_acks.c.seq, publish_acks.c.body_sha256).where(
            (publish_acks.c.run_id == run_id) & (publish_acks.c.part == part)
        )
        with self._engine.connect() as connection:
            return {int(row.seq): row.body_sha256 for row in connection.execute(query)}

    def acknowledged_records(self, run_id: str) -> tuple[int, int]:
        """(batches, records) Core View acknowledged for the run, over all its parts."""
        query = select(func.count(), func.coalesce(func.sum(publish_acks.c.records), 0)).where(
            publish_acks.c.run_id == run_id
        )
        with self._engine.connect() as connection:
            batches, records = connection.execute(query).one()
        return int(batches), int(records)

    def record_ack(self, run_id: str, part: int, seq: int, records: int, body_sha256: str) -> None:
        """Remember an acknowledged batch; recording it again keeps the first record."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(publish_acks)
            .values(
                run_id=run_id,
                part=part,
                seq=seq,
                records=records,
                body_sha256=body_sha256,
                acked_at=utc_now(),
            )
            .on_conflict_do_nothing(index_elements=["run_id", "part", "seq"])
        )
        with self._engine.begin() as connection:
            connection.execute(statement)
