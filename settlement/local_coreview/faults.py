"""Fault injection for the local Core View: latency, 429, 5xx and dropped connections.

An ASGI middleware in front of the app. Draws come from one seeded generator; only the
contract's write endpoints (PUT/POST under ``/v1/runs``) are disturbed, reads never are.
A dropped connection happens before the request is handled or, harder for a client, after
Core View stored the batch but before the answer reaches the client.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FAULT_KINDS = ("429", "5xx", "drop")


class DroppedConnectionError(Exception):
    """Raised after the response started: uvicorn then closes the socket mid-response."""


@dataclass(frozen=True)
class FaultConfig:
    """What to inject.

    Attributes
    ----------
    fail_rate
        Share of write requests that fail, spread evenly over ``kinds``.
    kinds
        Subset of ``("429", "5xx", "drop")``.
    latency_ms
        Added to every write request.
    retry_after_s
        Retry-After sent with a 429 (seconds; may be fractional for tests).
    seed
        Seed of the generator, so a run of faults can be replayed.
    """

    fail_rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    latency_ms: float = 0.0
    retry_after_s: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be in [0, 1], got {self.fail_rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {FAULT_KINDS}")


@dataclass
class FaultInjector:
    """ASGI middleware applying a ``FaultConfig``; ``injected`` counts what it did."""

    app: ASGIApp
    config: FaultConfig
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._disturbable(scope):
            await self.app(scope, receive, send)
            return
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        fault = self._draw()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "429":
            await _send_error(send, 429, "too_many_requests", "slow down", self._retry_after())
        elif fault == "5xx":
            await _send_error(send, 503, "unavailable", "injected server error")
        elif fault == "drop-before":
            await _drop(send)
        else:  # drop-after: handle the request, lose the answer
            await self.app(scope, receive, _swallow)
            await _drop(send)

    def _disturbable(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] in {"PUT", "POST"}
            and str(scope["path"]).startswith("/v1/runs")
            and (self.config.fail_rate > 0 or self.config.latency_ms > 0)
        )

    def _draw(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.config.fail_rate:
                return None
            kind = self._rng.choice(self.config.kinds)
            if kind == "drop":
                kind = self._rng.choice(("drop-before", "drop-after"))
            self.injected[kind] += 1
            return kind

    def _retry_after(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", f"{self.config.retry_after_s:g}".encode())]


async def _send_error(
    send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Promise a body, then fail: the server closes the connection with the answer unsent."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
    )
    raise DroppedConnectionError("injected dropped connection")


async def _swallow(message: Message) -> None:
    """A ``send`` that discards the app's answer (the client never gets it)."""
    del message


def describe(injected: Counter[str]) -> dict[str, Any]:
    """Counts of injected faults, for logs and tests."""
    return dict(sorted(injected.items()))
