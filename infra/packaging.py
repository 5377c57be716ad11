"""Deterministic zip of Python packages for Glue's ``--extra-py-files``.

Same sources give the same bytes (fixed timestamps and modes, sorted entries), so the asset hash
only changes when the code does and ``cdk diff`` stays quiet otherwise.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FILE_MODE = 0o644 << 16
_SKIPPED_DIRECTORIES = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def zip_packages(project_root: Path, packages: Iterable[str], destination: Path) -> Path:
    """Write the given top-level packages of ``project_root`` into one zip.

    Parameters
    ----------
    project_root
        Directory holding the packages; entries are stored relative to it.
    packages
        Package directory names, e.g. ``["settlement", "glue_jobs"]``.
    destination
        The zip file to write (its parent must exist).

    Returns
    -------
    Path
        ``destination``.
    """
    files = sorted(
        (path for package in packages for path in _package_files(project_root / package)),
        key=lambda path: path.relative_to(project_root).as_posix(),
    )
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(project_root).as_posix(), _FIXED_TIMESTAMP)
            entry.external_attr = _FILE_MODE
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return destination


def _package_files(package_dir: Path) -> Iterator[Path]:
    if not (package_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"not a Python package: {package_dir}")
    for path in package_dir.rglob("*"):
        relative_parts = path.relative_to(package_dir).parts
        if any(part in _SKIPPED_DIRECTORIES for part in relative_parts):
            continue
        if path.is_file() and path.suffix not in _SKIPPED_SUFFIXES:
            yield path
