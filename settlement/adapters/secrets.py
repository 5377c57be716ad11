"""Secrets Manager lookups (AWS only; boto3 is imported lazily so local runs never need it)."""

from __future__ import annotations

import json
from urllib.parse import quote


def database_url_from_secret(secret_arn: str) -> str:
    """Build the pg8000 URL from an RDS-managed secret (``username``, ``password``, ``host``…).

    Read when a runtime builds its adapters, and again whenever PostgreSQL refuses the
    credentials (``Database.from_url(refresh_url=…)``), so a warm Lambda that cached its
    adapters picks up a rotated password without a restart.
    """
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    fields = json.loads(secret["SecretString"])
    missing = {"username", "password", "host"} - set(fields)
    if missing:
        raise ValueError(f"database secret {secret_arn} lacks {sorted(missing)}")
    user, password = quote(fields["username"], safe=""), quote(fields["password"], safe="")
    port = fields.get("port", 5432)
    name = fields.get("dbname", "postgres")
    return f"postgresql+pg8000://{user}:{password}@{fields['host']}:{port}/{name}"
