"""Reference data (spec §3): parsing and validating the commission matrix and sales targets.

Pure: bytes in, validated rows or a complete list of errors out. Loading them into the database
is the job of :mod:`settlement.domain.reference.service` through a repository port.
"""

from settlement.domain.reference.errors import ReferenceUploadError, UploadError
from settlement.domain.reference.models import (
    REFERENCE_KINDS,
    MatrixRow,
    ReferenceKind,
    TargetRow,
)
from settlement.domain.reference.parsing import parse_matrix, parse_reference, parse_targets

__all__ = [
    "REFERENCE_KINDS",
    "MatrixRow",
    "ReferenceKind",
    "ReferenceUploadError",
    "TargetRow",
    "UploadError",
    "parse_matrix",
    "parse_reference",
    "parse_targets",
]
