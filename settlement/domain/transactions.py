"""The transaction batch format of spec §2: the one list of its columns and codes.

Pure constants, so the Lambdas can use them without importing Spark.
"""

from __future__ import annotations

#: The columns of a transaction batch, in the order of spec §2. ``original_transaction_id`` is
#: optional as a *value* (empty on a sale); the column itself must be present in the header.
TRANSACTION_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "event_type",
    "event_date",
    "market",
    "dealer_id",
    "vin",
    "series",
    "channel",
    "net_price",
    "currency",
    "original_transaction_id",
)

#: A net price (and a matrix ``amount_per_unit``) has at most this many integer digits: below
#: 10^12, so a line's BASE or BONUS (price × rate ≤ 1 + amount per unit) stays below
#: 2 × 10^12, far inside the money type decimal(18,2); a larger price is INVALID_AMOUNT.
AMOUNT_INTEGER_DIGITS = 12
