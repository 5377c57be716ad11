"""Peak memory of a measured step: the RSS of this process (and its children), sampled."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil


@dataclass
class PeakMemory:
    """Samples RSS every ``interval`` seconds while entered; ``peak`` and ``start`` in bytes.

    ``children`` adds the child processes (the local Spark JVM); leave it off when a child is
    something else being measured (the local Core View server).
    """

    interval: float = 0.05
    children: bool = False
    start: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def current(self) -> int:
        """The RSS now, in bytes."""
        me = psutil.Process()
        total = 0
        for process in [me, *(me.children(recursive=True) if self.children else [])]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue  # a child that just ended
        return total

    @property
    def increase_mib(self) -> float:
        """How far the peak rose above the RSS at the start, in MiB."""
        return (self.peak - self.start) / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = self.current()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.current())
