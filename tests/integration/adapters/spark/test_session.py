"""The local Spark session an operator's `settle` command starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.spark

START_AND_COUNT = (
    "from settlement.adapters.spark import local_spark_session\n"
    "print(local_spark_session().range(3).count())\n"
)


def test_starting_the_session_prints_nothing_on_stderr() -> None:
    # GIVEN a fresh process (a new JVM, as each `settle` command starts)
    # WHEN it starts the local session and runs an action
    done = subprocess.run(
        [sys.executable, "-c", START_AND_COUNT],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # THEN the action's answer is all there is: no Spark banner, no WARN lines
    assert (done.returncode, done.stdout, done.stderr) == (0, "3\n", "")
