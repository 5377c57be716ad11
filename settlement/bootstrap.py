"""The one place a runtime (CLI, Lambda, local runner) builds its adapters from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING

from settlement.adapters.storage import DataStore
from settlement.config import Settings, load_settings

if TYPE_CHECKING:
    from settlement.adapters.coreview import CoreViewClient
    from settlement.adapters.db import Database


@dataclass
class Adapters:
    """Adapters built lazily, so a Lambda only pays for what it touches."""

    settings: Settings = field(default_factory=load_settings)

    @cached_property
    def store(self) -> DataStore:
        return DataStore(self.settings.data_store)

    @cached_property
    def database(self) -> Database:
        from settlement.adapters.db import Database

        secret_arn = self.settings.database_secret_arn
        if secret_arn:
            from settlement.adapters.secrets import database_url_from_secret

            from_secret = partial(database_url_from_secret, secret_arn)
            database = Database.from_url(from_secret(), refresh_url=from_secret)
        else:
            database = Database.from_url(self.settings.database_url)
        database.migrate()
        return database

    @cached_property
    def coreview(self) -> CoreViewClient:
        from settlement.adapters.coreview import connect

        return connect(self.settings)


def build_adapters(settings: Settings | None = None) -> Adapters:
    return Adapters(settings or load_settings())
