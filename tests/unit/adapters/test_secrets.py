"""The RDS secret becomes a pg8000 URL; settings pick the secret from the environment."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from settlement.adapters.secrets import database_url_from_secret
from settlement.config import load_settings


@pytest.fixture
def aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@mock_aws
@pytest.mark.usefixtures("aws_region")
def test_rds_secret_becomes_a_quoted_pg8000_url() -> None:
    # GIVEN an RDS-managed secret whose password needs URL quoting
    secret = {
        "username": "settle",
        "password": "p@ss/w:rd",
        "host": "db.local",
        "port": 5433,
        "dbname": "settlement",
    }
    arn = boto3.client("secretsmanager").create_secret(Name="db", SecretString=json.dumps(secret))[
        "ARN"
    ]
    # WHEN the URL is built
    url = database_url_from_secret(arn)
    # THEN the password is quoted and every part is there
    assert url == "postgresql+pg8000://settle:p%40ss%2Fw%3Ard@db.local:5433/settlement"


@mock_aws
@pytest.mark.usefixtures("aws_region")
def test_incomplete_secret_is_refused_naming_the_missing_fields() -> None:
    arn = boto3.client("secretsmanager").create_secret(
        Name="db", SecretString=json.dumps({"username": "u"})
    )["ARN"]
    with pytest.raises(ValueError, match=r"lacks \['host', 'password'\]"):
        database_url_from_secret(arn)


def test_settings_take_the_database_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("SETTLE_DATABASE_SECRET_ARN", "arn:aws:secretsmanager:eu:1:secret:db")
    settings = load_settings(str(tmp_path))
    assert settings.database_secret_arn == "arn:aws:secretsmanager:eu:1:secret:db"
