"""A rotated database secret: the database reads it again when PostgreSQL refuses the old one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError

from settlement.adapters.db import Database
from settlement.adapters.db.database import sqlstate
from settlement.bootstrap import Adapters
from settlement.config import load_settings

pytestmark = pytest.mark.postgres


class RotatingSecret:
    """What Secrets Manager answers: the URL it holds now, and how often it was read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.url


@pytest.fixture
def stale_url(postgresql_url: str) -> str:
    """The session server's URL with a role the server does not know (28000, as a refused login)."""
    return make_url(postgresql_url).set(username="rotated_away").render_as_string(False)


@pytest.fixture
def fresh_connections() -> Iterator[list[Database]]:
    built: list[Database] = []
    yield built
    for database in built:
        database.dispose()


def select_one(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text("SELECT 1")).scalar_one())


def test_refused_credentials_are_read_again_once_and_kept(
    postgresql_url: str, stale_url: str, fresh_connections: list[Database]
) -> None:
    # GIVEN a database built from credentials that were rotated since, and a secret that now
    # holds the new ones
    secret = RotatingSecret(postgresql_url)
    database = Database.from_url(stale_url, refresh_url=secret)
    fresh_connections.append(database)
    # WHEN it connects, then connects again after its pool was dropped
    first = select_one(database)
    database.engine.dispose()
    second = select_one(database)
    # THEN both work, and the secret was read again only once
    assert (first, second) == (1, 1)
    assert secret.reads == 1


def test_a_secret_still_refused_fails_with_the_server_s_reason(
    stale_url: str, fresh_connections: list[Database]
) -> None:
    # GIVEN a secret that still holds credentials the server refuses
    secret = RotatingSecret(stale_url)
    database = Database.from_url(stale_url, refresh_url=secret)
    fresh_connections.append(database)
    # WHEN it connects THEN the refusal surfaces after one more read, not a loop
    with pytest.raises(Exception, match="rotated_away") as raised:
        select_one(database)
    assert sqlstate(getattr(raised.value, "orig", raised.value)) == "28000"
    assert secret.reads == 1


def test_a_server_that_is_down_is_not_an_authentication_problem(
    postgresql_url: str, fresh_connections: list[Database]
) -> None:
    # GIVEN credentials for a port nobody listens on
    secret = RotatingSecret(postgresql_url)
    unreachable = make_url(postgresql_url).set(port=1).render_as_string(False)
    database = Database.from_url(unreachable, refresh_url=secret)
    fresh_connections.append(database)
    # WHEN it connects THEN it fails as it is, without reading the secret again
    with pytest.raises(InterfaceError, match="Can't create a connection"):
        select_one(database)
    assert secret.reads == 0


@pytest.fixture
def aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def login_role(postgresql_url: str) -> Iterator[str]:
    """A superuser login role of its own; the test renames it, as a rotation retires a login."""
    admin = Database.from_url(postgresql_url)
    name = f"settle_{uuid.uuid4().hex[:8]}"
    with admin.engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {name} LOGIN SUPERUSER"))
    yield name
    with admin.engine.begin() as connection:
        for role in (name, f"{name}_next"):
            connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
    admin.dispose()


def rotate(postgresql_url: str, role: str) -> str:
    """Retire ``role``'s login (renamed) and return the role the secret names now."""
    admin = Database.from_url(postgresql_url)
    with admin.engine.begin() as connection:
        connection.execute(text(f"ALTER ROLE {role} RENAME TO {role}_next"))
    admin.dispose()
    return f"{role}_next"


@mock_aws
@pytest.mark.usefixtures("aws_region")
def test_a_warm_lambda_s_adapters_follow_a_rotated_secret(
    postgresql_url: str, login_role: str, tmp_path: Path
) -> None:
    # GIVEN adapters built from the RDS secret (as a Lambda keeps them between invocations)
    server = make_url(postgresql_url)
    secrets = boto3.client("secretsmanager")

    def secret_for(role: str) -> str:
        fields = {"username": role, "password": "unused", "host": server.host, "port": server.port}
        return json.dumps({**fields, "dbname": server.database})

    arn = secrets.create_secret(Name="rds", SecretString=secret_for(login_role))["ARN"]
    adapters = Adapters(load_settings(tmp_path, database_secret_arn=arn))
    assert adapters.database.runs.get_run("no-such-run") is None
    # WHEN the secret is rotated (the old login no longer works) and a new connection is needed
    secrets.put_secret_value(
        SecretId=arn, SecretString=secret_for(rotate(postgresql_url, login_role))
    )
    adapters.database.engine.dispose()
    # THEN the same adapters carry on with the new credentials
    assert adapters.database.runs.get_run("no-such-run") is None
    with adapters.database.engine.connect() as connection:
        assert connection.execute(text("SELECT current_user")).scalar_one() == f"{login_role}_next"
    adapters.database.dispose()
