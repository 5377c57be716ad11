"""Where the data store, the database and Core View live.

Precedence, highest first: explicit overrides (CLI flags), environment variables, the config
file ``<home>/settle.toml``, embedded defaults inside the workspace directory ``SETTLE_HOME``.
On AWS the Lambdas get the same variables from their environment.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_HOME = Path("~/.settle")

ENVIRONMENT_VARIABLES = {
    "data_store": "SETTLE_DATA_STORE",
    "database_url": "SETTLE_DATABASE_URL",
    "database_secret_arn": "SETTLE_DATABASE_SECRET_ARN",
    "coreview_url": "SETTLE_COREVIEW_URL",
    "coreview_token": "SETTLE_COREVIEW_TOKEN",
    "coreview_token_secret_arn": "SETTLE_COREVIEW_TOKEN_SECRET_ARN",
}


class SettingsError(ValueError):
    """The configuration cannot be used; the message names the file, variable or value."""


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one runtime.

    Attributes
    ----------
    home
        Workspace directory holding the local defaults.
    data_store
        Root URI of the data store (``s3://…`` on AWS, a directory locally).
    database_url
        SQLAlchemy URL: ``postgresql+pg8000://…`` on RDS, SQLite by default.
    coreview_url
        ``https://…`` / ``http://…`` for the Core View API, or ``file://DIR`` for the file sink.
    coreview_token
        Bearer token (kept out of ``repr`` so it never reaches a log).
    coreview_token_secret_arn
        On AWS, the Secrets Manager secret holding the token instead.
    database_secret_arn
        On AWS, the RDS secret the database URL is built from (wins over ``database_url``).
    """

    home: Path
    data_store: str
    database_url: str
    coreview_url: str
    coreview_token: str = field(default="", repr=False)
    coreview_token_secret_arn: str = ""
    database_secret_arn: str = ""

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def defaults_for(home: Path) -> dict[str, str]:
    return {
        "data_store": str(home / "store"),
        "database_url": f"sqlite:///{home / 'settle.db'}",
        "coreview_url": f"file://{home / 'coreview'}",
        "coreview_token": "local-dev-token",
        "coreview_token_secret_arn": "",
        "database_secret_arn": "",
    }


def embedded_settings(home: Path) -> Settings:
    """The embedded defaults inside ``home``, whatever the environment or a ``settle.toml`` say.

    For a self-contained workspace (the demo) that must never reach a configured database,
    data store or Core View.
    """
    resolved_home = home.expanduser().resolve()
    return Settings(home=resolved_home, **defaults_for(resolved_home))


def configured_variables() -> list[str]:
    """The ``SETTLE_*`` variables of :data:`ENVIRONMENT_VARIABLES` set in this environment."""
    return [name for name in ENVIRONMENT_VARIABLES.values() if os.environ.get(name)]


def load_settings(home: str | Path | None = None, **overrides: str | None) -> Settings:
    """Resolve the settings for ``home`` (or ``$SETTLE_HOME``, else ``~/.settle``)."""
    resolved_home = Path(home or os.environ.get("SETTLE_HOME") or DEFAULT_HOME).expanduser()
    resolved_home = resolved_home.resolve()
    if resolved_home.exists() and not resolved_home.is_dir():
        raise SettingsError(f"home {resolved_home} is a file, not a directory")
    values: dict[str, str] = defaults_for(resolved_home)
    config_file = resolved_home / "settle.toml"
    if config_file.exists():
        with config_file.open("rb") as handle:
            try:
                from_file = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise SettingsError(f"{config_file} is not valid TOML: {error}") from None
        unknown = set(from_file) - set(values)
        if unknown:
            raise SettingsError(f"{config_file}: unknown settings {sorted(unknown)}")
        values.update({key: str(value) for key, value in from_file.items()})
    for key, variable in ENVIRONMENT_VARIABLES.items():
        if os.environ.get(variable):
            values[key] = os.environ[variable]
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(home=resolved_home, **values)
