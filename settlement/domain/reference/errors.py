"""Upload errors: every problem found in a file, each naming the file, row and column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class UploadError:
    """One problem in an uploaded file.

    Attributes
    ----------
    file
        The uploaded file's name.
    row
        1-based row, the header being row 1; ``None`` for a problem with the whole file.
    column
        The column concerned; ``None`` for a problem with the whole row or file.
    reason
        What is wrong, in words a finance user can act on.
    """

    file: str
    row: int | None
    column: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.reason}"


class ReferenceUploadError(Exception):
    """An upload was rejected whole; ``errors`` lists every problem found."""

    def __init__(self, file_name: str, errors: Sequence[UploadError]) -> None:
        self.file_name = file_name
        self.errors = list(errors)
        first = f"; first: {self.errors[0]}" if self.errors else ""
        super().__init__(f"{file_name} rejected with {len(self.errors)} error(s){first}")

    def as_dict(self) -> dict[str, Any]:
        """The error report written next to a rejected file as ``<file>.errors.json``."""
        return {
            "file": self.file_name,
            "error_count": len(self.errors),
            "errors": [error.as_dict() for error in self.errors],
        }
