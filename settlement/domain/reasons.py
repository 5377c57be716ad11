"""Reject reason codes for transaction rows (spec §2)."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a transaction row earns nothing; the value is what ``rejects/`` stores."""

    MISSING_FIELD = "MISSING_FIELD"
    INVALID_DATE = "INVALID_DATE"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_EVENT_TYPE = "INVALID_EVENT_TYPE"
    INVALID_CHANNEL = "INVALID_CHANNEL"
    OUT_OF_PERIOD = "OUT_OF_PERIOD"
    DUPLICATE_TRANSACTION = "DUPLICATE_TRANSACTION"
    NO_RATE = "NO_RATE"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    ORIGINAL_NOT_FOUND = "ORIGINAL_NOT_FOUND"
    ALREADY_CANCELLED = "ALREADY_CANCELLED"


SUMMARY_FLAG_NO_TARGET = "NO_TARGET"
