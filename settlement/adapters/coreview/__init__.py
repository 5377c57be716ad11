"""Core View adapters (spec §7): the HTTP client and the ``file://`` sink.

``connect(settings)`` picks one by the scheme of ``settings.coreview_url``.
"""

from __future__ import annotations

from settlement.adapters.coreview.file_sink import FileSinkClient
from settlement.adapters.coreview.http import HttpCoreViewClient, RetryPolicy
from settlement.adapters.coreview.token import TokenSource
from settlement.config import Settings
from settlement.domain.publishing import (
    CommitReceipt,
    CoreViewClient,
    CoreViewConflictError,
    CoreViewError,
    CoreViewRejectedError,
    CoreViewUnavailableError,
)

__all__ = [
    "CommitReceipt",
    "CoreViewClient",
    "CoreViewConflictError",
    "CoreViewError",
    "CoreViewRejectedError",
    "CoreViewUnavailableError",
    "FileSinkClient",
    "HttpCoreViewClient",
    "RetryPolicy",
    "TokenSource",
    "connect",
]


def connect(settings: Settings, *, retry: RetryPolicy | None = None) -> CoreViewClient:
    """The Core View client for ``settings.coreview_url``.

    Parameters
    ----------
    settings
        ``coreview_url`` is ``http(s)://…`` (the API) or ``file://DIR`` (the file sink);
        the token comes from ``coreview_token`` or, when set, ``coreview_token_secret_arn``.
    retry
        Backoff bounds for the HTTP client (defaults suit production).

    Raises
    ------
    ValueError
        The URL has another scheme.
    """
    url = settings.coreview_url
    if url.startswith(("http://", "https://")):
        token = TokenSource(settings.coreview_token, settings.coreview_token_secret_arn)
        return HttpCoreViewClient(url, token, retry=retry or RetryPolicy())
    if url.startswith("file://"):
        return FileSinkClient(url.removeprefix("file://"))
    raise ValueError(f"coreview_url must be http(s):// or file://, got {url!r}")
