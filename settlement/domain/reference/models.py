"""Validated reference rows (spec §3). Money and rates are ``Decimal``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, get_args

ReferenceKind = Literal["matrix", "targets"]
REFERENCE_KINDS: tuple[str, ...] = get_args(ReferenceKind)

MATRIX_REQUIRED = (
    "market",
    "series",
    "channel",
    "component",
    "min_attainment",
    "rate",
    "currency",
    "valid_from",
)
MATRIX_OPTIONAL = ("amount_per_unit", "valid_to")
TARGETS_REQUIRED = ("market", "dealer_id", "period", "target_units")

COMPONENTS = ("BASE", "BONUS")
CHANNELS = ("PRIVATE", "FLEET", "EMPLOYEE", "*")


@dataclass(frozen=True)
class MatrixRow:
    """One commission matrix row; ``valid_to`` is exclusive, ``None`` when open-ended."""

    market: str
    series: str
    channel: str
    component: str
    min_attainment: Decimal
    rate: Decimal
    amount_per_unit: Decimal
    currency: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class TargetRow:
    """A dealer's sales target for one period (``YYYY-MM``)."""

    market: str
    dealer_id: str
    period: str
    target_units: int


@dataclass(frozen=True)
class NewVersion:
    """Who uploaded which file, when: the header of a version about to be stored."""

    kind: ReferenceKind
    file_name: str
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


@dataclass(frozen=True)
class VersionInfo:
    """A stored reference version (spec §3: id, uploader, sha256, time)."""

    kind: ReferenceKind
    version_id: str
    file_name: str
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    row_count: int
    markets: tuple[str, ...] = ()
