"""The local Spark session an operator's `settle` command starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


FAIL_ONE_JOB = (
    "import sys\n"
    "from pathlib import Path\n"
    "from settlement.adapters.spark import local_spark_session\n"
    "spark = local_spark_session(log_file=Path(sys.argv[1]))\n"
    "try:\n"
    "    spark.range(1).selectExpr(\"raise_error('boom in a task')\").collect()\n"
    "except Exception:\n"
    "    print('failed as expected')\n"
)


def test_a_run_s_spark_log_goes_to_its_file_not_the_terminal(tmp_path: Path) -> None:
    # GIVEN a fresh process whose session logs to a file in a directory not yet made
    log_file = tmp_path / "home with space" / "logs" / "spark.log"
    # WHEN a Spark task fails in it
    done = subprocess.run(
        [sys.executable, "-c", FAIL_ONE_JOB, str(log_file)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # THEN the terminal shows only the program's own output; the task's error is in the file
    assert (done.returncode, done.stdout, done.stderr) == (0, "failed as expected\n", "")
    logged = log_file.read_text()
    assert "ERROR" in logged
    assert "boom in a task" in logged
