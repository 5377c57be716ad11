"""The local Core View server (spec §7): the contract on loopback, with fault injection."""

from __future__ import annotations

from settlement.local_coreview.faults import FaultConfig
from settlement.local_coreview.server import ServerHandle, serve_forever, serve_in_thread
from settlement.local_coreview.store import CoreViewStore

__all__ = ["CoreViewStore", "FaultConfig", "ServerHandle", "serve_forever", "serve_in_thread"]
