"""The run's reference snapshot as Arrow schemas (docs/architecture.md): one definition.

Written by the export step, read by the calculation job; pure pyarrow so the Lambdas need no
Spark. ``settlement/domain/schemas.py`` holds the Spark view of the same columns.
"""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

MATRIX_SCHEMA = pa.schema(
    [
        ("matrix_version", pa.string()),
        ("market", pa.string()),
        ("series", pa.string()),
        ("channel", pa.string()),
        ("component", pa.string()),
        ("min_attainment", pa.decimal128(12, 6)),
        ("rate", pa.decimal128(7, 6)),
        ("amount_per_unit", pa.decimal128(18, 2)),
        ("currency", pa.string()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
    ]
)
TARGETS_SCHEMA = pa.schema(
    [
        ("target_version", pa.string()),
        ("market", pa.string()),
        ("dealer_id", pa.string()),
        ("period", pa.string()),
        ("target_units", pa.int64()),
    ]
)
LEDGER_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("period", pa.string()),
        ("event_type", pa.string()),
        ("original_transaction_id", pa.string()),
        ("dealer_id", pa.string()),
        ("market", pa.string()),
        ("currency", pa.string()),
        ("base_amount", pa.decimal128(18, 2)),
        ("bonus_amount", pa.decimal128(18, 2)),
        ("settled", pa.bool_()),
    ]
)
