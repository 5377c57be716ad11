"""The database: one engine, migrations and the repositories built on it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool, StaticPool

from settlement.adapters.db.ack_store import SqlPublishAckStore
from settlement.adapters.db.ledger_repository import SqlLedgerRepository
from settlement.adapters.db.reference_repository import SqlReferenceRepository
from settlement.adapters.db.run_repository import SqlRunRepository
from settlement.config import SettingsError

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 4_815_162_342  # any constant: the advisory lock serialising migrations


class Database:
    """The settlement database (PostgreSQL on RDS, SQLite locally) and its repositories.

    Parameters
    ----------
    engine
        A SQLAlchemy engine; use :meth:`from_url` to build one with the right settings.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(
        cls, url: str, *, refresh_url: Callable[[], str] | None = None, **engine_options: Any
    ) -> Database:
        """Connect to ``postgresql+pg8000://…`` or ``sqlite:///path`` (created when absent).

        Lambdas keep a small pool across invocations; SQLite gets foreign keys switched on and
        a busy timeout, since the local runner and the CLI may share one file. On PostgreSQL,
        ``refresh_url`` (the URL read again from its secret) is asked for when the server
        refuses the credentials: a rotated password is picked up by a warm Lambda.
        """
        parsed = _checked_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            in_memory = parsed.database in (None, "", ":memory:")
            engine = create_engine(
                parsed,
                # In memory, every connection would be a new empty database: share one.
                connect_args={"timeout": 30, "check_same_thread": not in_memory},
                poolclass=StaticPool if in_memory else NullPool,
                **engine_options,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin_immediate)
        else:
            if parsed.drivername == "postgresql":  # the driver this project ships is pg8000
                parsed = parsed.set(drivername="postgresql+pg8000")
            options = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}
            engine = create_engine(parsed, **{**options, **engine_options})
            if refresh_url is not None:
                event.listen(engine, "do_connect", FreshCredentialsOnRefusal(refresh_url))
        return cls(engine)

    def migrate(self) -> None:
        """Upgrade the schema to the newest migration (idempotent; cheap when already there)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        heads = set(ScriptDirectory.from_config(config).get_heads())
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Lambdas starting together must not race on CREATE TABLE: one migrates,
                # the others wait here and then find the schema at head.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            current = set(MigrationContext.configure(connection).get_current_heads())
            if current == heads:
                return
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close the pooled connections (tests, or a CLI about to exit)."""
        self.engine.dispose()

    @cached_property
    def reference(self) -> SqlReferenceRepository:
        return SqlReferenceRepository(self.engine)

    @cached_property
    def runs(self) -> SqlRunRepository:
        return SqlRunRepository(self.engine)

    @cached_property
    def ledger(self) -> SqlLedgerRepository:
        return SqlLedgerRepository(self.engine)

    @cached_property
    def acks(self) -> SqlPublishAckStore:
        return SqlPublishAckStore(self.engine)

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)})"


# SQLSTATE class 28, invalid authorization: a wrong password, or a role that does not exist.
AUTHENTICATION_REFUSED = frozenset({"28P01", "28000"})
CREDENTIAL_PARAMETERS = ("user", "password", "host", "port", "database")


class FreshCredentialsOnRefusal:
    """A ``do_connect`` hook: when PostgreSQL refuses the credentials, read them again and retry.

    The fresh credentials are kept for every later connection of the engine, so a rotation
    costs one refused attempt per process, not one per connection. Any other failure (the
    server down, a timeout) is raised as it is.
    """

    def __init__(self, refresh_url: Callable[[], str]) -> None:
        self._refresh_url = refresh_url
        self._fresh: dict[str, Any] = {}

    def __call__(
        self, dialect: Dialect, _record: object, cargs: list[Any], cparams: dict[str, Any]
    ) -> Any:
        cparams.update(self._fresh)
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            if sqlstate(error) not in AUTHENTICATION_REFUSED:
                raise
        _, parameters = dialect.create_connect_args(make_url(self._refresh_url()))
        self._fresh = {k: parameters[k] for k in CREDENTIAL_PARAMETERS if k in parameters}
        cparams.update(self._fresh)
        return dialect.connect(*cargs, **cparams)


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 error (its first argument is the server's message fields)."""
    fields = error.args[0] if error.args else None
    code = fields.get("C") if isinstance(fields, dict) else None
    return code if isinstance(code, str) else None


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # SQLAlchemy, not the sqlite3 module, decides where transactions begin (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe against corruption, fewer fsyncs
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write.

    A deferred transaction that reads, then writes (``open_run`` checks the locks, then takes
    them) fails at once with "database is locked" when another writer got in between; an
    immediate one waits for the busy timeout instead, so concurrent runs get PeriodsHeldError.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


SUPPORTED_BACKENDS = ("postgresql", "sqlite")


def _checked_url(url: str) -> URL:
    """The parsed URL, or a :class:`SettingsError` naming it (password hidden)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(
            "database URL is not a URL like postgresql+pg8000://user@host/db or sqlite:///file"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        shown = parsed.render_as_string(hide_password=True)
        raise SettingsError(f"database URL {shown}: only PostgreSQL and SQLite are supported")
    return parsed
