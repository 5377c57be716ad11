"""The Glue --extra-py-files zip is deterministic and holds only package sources."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from infra.packaging import zip_packages


def make_package(root: Path, name: str, files: dict[str, str]) -> None:
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_same_sources_give_identical_bytes(tmp_path: Path) -> None:
    # GIVEN a package WHEN zipped twice with different file times THEN the bytes are identical
    make_package(tmp_path, "pkg", {"a.py": "A = 1\n", "sub/b.py": "B = 2\n"})
    first = zip_packages(tmp_path, ["pkg"], tmp_path / "one.zip").read_bytes()
    os.utime(tmp_path / "pkg" / "a.py", (1_000_000_000, 1_000_000_000))
    second = zip_packages(tmp_path, ["pkg"], tmp_path / "two.zip").read_bytes()
    assert first == second


def test_entries_are_sorted_paths_without_caches(tmp_path: Path) -> None:
    # GIVEN two packages with bytecode caches WHEN zipped THEN only sources, sorted, remain
    make_package(tmp_path, "zeta", {"z.py": ""})
    make_package(
        tmp_path, "alpha", {"m.py": "", "__pycache__/m.cpython-311.pyc": "", "sub/x.pyc": ""}
    )
    archive = zip_packages(tmp_path, ["zeta", "alpha"], tmp_path / "libs.zip")
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
    assert names == ["alpha/__init__.py", "alpha/m.py", "zeta/__init__.py", "zeta/z.py"]


def test_content_change_changes_the_archive(tmp_path: Path) -> None:
    # GIVEN a zipped package WHEN a source changes THEN the archive differs (new asset hash)
    make_package(tmp_path, "pkg", {"a.py": "RATE = 1\n"})
    before = zip_packages(tmp_path, ["pkg"], tmp_path / "before.zip").read_bytes()
    (tmp_path / "pkg" / "a.py").write_text("RATE = 2\n")
    after = zip_packages(tmp_path, ["pkg"], tmp_path / "after.zip").read_bytes()
    assert before != after


def test_a_directory_that_is_not_a_package_is_refused(tmp_path: Path) -> None:
    # GIVEN a directory without __init__.py WHEN zipped THEN the error names it
    (tmp_path / "loose").mkdir()
    with pytest.raises(FileNotFoundError, match=r"not a Python package: .*loose"):
        zip_packages(tmp_path, ["loose"], tmp_path / "libs.zip")
