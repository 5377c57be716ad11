"""λ parse-reference: an S3 ObjectCreated event for an uploaded matrix or targets file.

Loads the file as a new reference version, or writes ``<key>.errors.json`` next to it and
fails with the reason. A re-delivered event finds the same bytes and returns the same version.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from settlement.bootstrap import Adapters, build_adapters
from settlement.config import Settings, load_settings
from settlement.domain.reference.errors import ReferenceUploadError
from settlement.domain.reference.service import kind_of_incoming, load_incoming

logger = Logger(service="settlement-parse-reference")


class ReferenceFileRejectedError(Exception):
    """One or more uploaded files were rejected; their error reports are in the data store."""


@cache
def _adapters(settings: Settings) -> Adapters:
    # A warm Lambda keeps its database engine between invocations.
    return build_adapters(settings)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The Lambda entry point: :func:`handle` on the adapters of this environment."""
    return handle(event, _adapters(load_settings()))


def handle(event: dict[str, Any], adapters: Adapters) -> dict[str, Any]:
    """Load every reference file named in the S3 event.

    Returns
    -------
    dict
        ``{"loaded": [UploadResult as dict], "ignored": [keys]}``.

    Raises
    ------
    ReferenceFileRejectedError
        Naming each rejected file, its error count and the ``.errors.json`` report.
    """
    loaded: list[dict[str, Any]] = []
    ignored: list[str] = []
    rejected: list[str] = []
    for record in event.get("Records", []):
        key = _store_key(adapters, record)
        if kind_of_incoming(key) is None:
            ignored.append(key)
            continue
        uploaded_by = record.get("userIdentity", {}).get("principalId") or "s3-upload"
        try:
            result = load_incoming(
                key,
                store=adapters.store,
                repository=adapters.database.reference,
                uploaded_by=uploaded_by,
            )
        except ReferenceUploadError as error:
            logger.warning("reference file rejected", extra={"key": key, "report": error.as_dict()})
            rejected.append(
                f"{key}: {len(error.errors)} error(s), see {key}.errors.json ({error.errors[0]})"
            )
            continue
        logger.info("reference file loaded", extra={"upload": result.as_dict()})
        loaded.append(result.as_dict())
    if rejected:
        raise ReferenceFileRejectedError("rejected reference upload: " + "; ".join(rejected))
    return {"loaded": loaded, "ignored": ignored}


def _store_key(adapters: Adapters, record: dict[str, Any]) -> str:
    """The data-store key of the object in one S3 event record."""
    bucket = record["s3"]["bucket"]["name"]
    key = unquote_plus(record["s3"]["object"]["key"])
    if adapters.store.is_local:
        return key
    return adapters.store.key_of(f"s3://{bucket}/{key}")
