"""The Core View bearer token: from settings, or fetched lazily from Secrets Manager."""

from __future__ import annotations

import json
import re
import threading


class TokenSource:
    """Resolves the bearer token once, on first use; never shows it in ``repr`` or errors.

    Parameters
    ----------
    token
        The token itself (local runs, tests).
    secret_arn
        On AWS, the Secrets Manager secret holding it (a plain string or ``{"token": …}``);
        takes precedence over ``token`` when set.
    """

    def __init__(self, token: str = "", secret_arn: str = "") -> None:
        self._token = token
        self._secret_arn = secret_arn
        self._lock = threading.Lock()
        self._resolved: str | None = None

    def __repr__(self) -> str:
        source = "secrets-manager" if self._secret_arn else "settings"
        return f"TokenSource(source={source!r}, token=***)"

    def get(self) -> str:
        """The token, fetching the secret on first call (thread-safe)."""
        with self._lock:
            if self._resolved is None:
                token = (self._fetch() if self._secret_arn else self._token).strip()
                self._resolved = _checked(token, self._source())
            return self._resolved

    def _source(self) -> str:
        return f"secret {self._secret_arn}" if self._secret_arn else "coreview_token"

    def _fetch(self) -> str:
        import boto3

        client = boto3.client("secretsmanager")
        try:
            secret = client.get_secret_value(SecretId=self._secret_arn)["SecretString"]
        except Exception as error:  # boto errors carry no secret value; keep their type
            raise RuntimeError(
                f"cannot read the Core View token secret {self._secret_arn}: {type(error).__name__}"
            ) from None
        return _token_from_secret(secret)


# What an HTTP header value may carry (RFC 9110 token68 and the like): visible ASCII, no space.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def _checked(token: str, source: str) -> str:
    """The token, or an error that names where it came from but never shows it: a token with
    a line break inside would otherwise end up, whole, in the HTTP library's error message."""
    if not token:
        raise ValueError("no Core View token configured (coreview_token or its secret)")
    if not _HEADER_SAFE.fullmatch(token):
        raise ValueError(
            f"the Core View token from {source} holds characters an HTTP header cannot carry "
            "(spaces, line breaks or non-ASCII): set it again"
        )
    return token


def _token_from_secret(secret: str) -> str:
    """Accept the token as the whole secret string or as ``{"token": …}``."""
    if secret.lstrip().startswith("{"):
        document = json.loads(secret)
        token = document.get("token") if isinstance(document, dict) else None
        if not isinstance(token, str):
            raise ValueError("the Core View token secret is JSON without a 'token' string")
        return token
    return secret.strip()
