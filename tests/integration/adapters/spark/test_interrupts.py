"""Ctrl-C while the local Spark session works: the jobs are cancelled and the interrupt raised."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from pyspark.sql import SparkSession

from settlement.adapters.spark import interrupt_cancels_jobs

pytestmark = pytest.mark.spark


def test_ctrl_c_cancels_the_running_job_and_raises_keyboard_interrupt(
    spark: SparkSession,
) -> None:
    # GIVEN an action that would run for minutes, and a Ctrl-C one second into it
    endless = spark.range(0, 1 << 40, numPartitions=2).selectExpr("sum(id * id)")
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    before = signal.getsignal(signal.SIGINT)
    # WHEN it runs inside interrupt_cancels_jobs
    with pytest.raises(KeyboardInterrupt), interrupt_cancels_jobs(spark):
        endless.collect()
    # THEN the interrupt stops it promptly, the handler is restored, and the session still works
    assert time.monotonic() - started < 60
    assert signal.getsignal(signal.SIGINT) is before
    assert spark.range(3).count() == 3


def test_ctrl_c_between_two_actions_cancels_the_next_one(spark: SparkSession) -> None:
    # GIVEN Python-side work (no Spark job running) when Ctrl-C comes, then an endless action
    endless = spark.range(0, 1 << 40, numPartitions=2).selectExpr("sum(id * id)")
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()

    # WHEN both run inside interrupt_cancels_jobs
    def work_then_endless_action() -> None:
        time.sleep(1.5)
        endless.collect()

    with pytest.raises(KeyboardInterrupt), interrupt_cancels_jobs(spark):
        work_then_endless_action()
    # THEN the action is cancelled as it starts, not run to its end
    assert time.monotonic() - started < 60
    assert spark.range(3).count() == 3


def test_without_ctrl_c_nothing_changes(spark: SparkSession) -> None:
    with interrupt_cancels_jobs(spark):
        assert spark.range(5).count() == 5
