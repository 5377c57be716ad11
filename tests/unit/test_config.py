"""Settings resolve flags over environment over the config file over embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlement.config import ENVIRONMENT_VARIABLES, embedded_settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SETTLE_HOME", *ENVIRONMENT_VARIABLES.values()):
        monkeypatch.delenv(variable, raising=False)


def test_defaults_live_inside_the_workspace(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.data_store == str(tmp_path / "store")
    assert settings.database_url == f"sqlite:///{tmp_path / 'settle.db'}"
    assert settings.coreview_url == f"file://{tmp_path / 'coreview'}"


def test_precedence_is_flag_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a config file and an environment variable for different settings
    (tmp_path / "settle.toml").write_text(
        'coreview_url = "http://file-value"\ndata_store = "/from/file"\n'
    )
    monkeypatch.setenv("SETTLE_COREVIEW_URL", "http://env-value")
    # WHEN settings resolve with a flag for the data store
    settings = load_settings(tmp_path, data_store="/from/flag")
    # THEN the flag beats the file and the environment beats the file
    assert settings.data_store == "/from/flag"
    assert settings.coreview_url == "http://env-value"


def test_unknown_key_in_the_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "settle.toml").write_text('databse_url = "typo"\n')
    with pytest.raises(ValueError, match="unknown settings"):
        load_settings(tmp_path)


def test_token_never_shows_in_repr(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, coreview_token="s3cr3t-token")
    assert "s3cr3t-token" not in repr(settings)


def test_embedded_settings_ignore_the_environment_and_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every setting configured elsewhere, by the environment and by a settle.toml
    for variable in ENVIRONMENT_VARIABLES.values():
        monkeypatch.setenv(variable, "configured-elsewhere")
    (tmp_path / "settle.toml").write_text('database_url = "postgresql+pg8000://u@db/settle"\n')
    # WHEN the embedded settings of that home are asked for
    settings = embedded_settings(tmp_path)
    # THEN they are the defaults inside it, nothing configured reaches them
    assert settings.home == tmp_path.resolve()
    assert settings.data_store == str(tmp_path / "store")
    assert settings.database_url == f"sqlite:///{tmp_path / 'settle.db'}"
    assert settings.coreview_url == f"file://{tmp_path / 'coreview'}"
    assert settings.coreview_token == "local-dev-token"
    assert (settings.coreview_token_secret_arn, settings.database_secret_arn) == ("", "")
