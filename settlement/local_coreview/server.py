"""Run the local Core View: in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from settlement.local_coreview.app import create_app
from settlement.local_coreview.faults import DroppedConnectionError, FaultConfig, FaultInjector
from settlement.local_coreview.store import CoreViewStore


@dataclass
class ServerHandle:
    """A running server: its ``url``, its ``store`` (read-back) and ``stop()``."""

    url: str
    store: CoreViewStore
    faults: Counter[str]
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.store.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class _HideInjectedDrops(logging.Filter):
    """uvicorn logs a traceback per dropped connection; injected ones are expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, DroppedConnectionError)


_HIDE_INJECTED_DROPS = _HideInjectedDrops()


def build_server(
    *,
    db: str | Path,
    token: str,
    faults: FaultConfig | None = None,
    log_level: str = "warning",
) -> tuple[uvicorn.Server, CoreViewStore, FaultInjector]:
    """The uvicorn server for the app over the SQLite file ``db`` (not yet started)."""
    logging.getLogger("uvicorn.error").addFilter(_HIDE_INJECTED_DROPS)
    store = CoreViewStore(db)
    injector = FaultInjector(create_app(store, token), faults or FaultConfig())
    config = uvicorn.Config(
        injector, lifespan="off", access_log=False, log_level=log_level, timeout_keep_alive=30
    )
    return uvicorn.Server(config), store, injector


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port).

    Created with ``IPPROTO_TCP`` so asyncio sets TCP_NODELAY on each accepted connection (it
    checks the protocol); without it every answer on a kept-alive connection waited ~40 ms for
    a delayed ACK (Nagle).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def serve_in_thread(
    *,
    db: str | Path,
    token: str = "local-dev-token",  # noqa: S107 - the local server's documented default
    faults: FaultConfig | None = None,
    port: int = 0,
    log_level: str = "critical",
) -> ServerHandle:
    """Start the local Core View in a daemon thread and return once it accepts connections.

    Parameters
    ----------
    db
        SQLite file holding what Core View receives.
    faults
        Latency / 429 / 5xx / dropped connections to inject (none by default).
    log_level
        uvicorn's; ``critical`` hides the tracebacks of injected dropped connections.
    """
    server, store, injector = build_server(db=db, token=token, faults=faults, log_level=log_level)
    sock = bind_loopback(port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="local-coreview", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the local Core View did not start")
        time.sleep(0.01)
    host, bound_port = sock.getsockname()
    return ServerHandle(f"http://{host}:{bound_port}", store, injector.injected, server, thread)


def serve_forever(
    *, db: str | Path, token: str, listener: socket.socket, faults: FaultConfig | None = None
) -> None:
    """Serve on ``listener`` (from :func:`bind_loopback`) until interrupted (the CLI)."""
    server, store, _ = build_server(db=db, token=token, faults=faults, log_level="warning")
    try:
        server.run(sockets=[listener])
    finally:
        store.close()
