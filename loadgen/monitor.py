"""This process's own CPU and memory, sampled once a second."""

from __future__ import annotations

import os
import resource
import time


class ProcessMonitor:
    """CPU% (100 = one core) since the previous sample, and RSS in MB."""

    def __init__(self) -> None:
        self._last_cpu = self._cpu_seconds()
        self._last_wall = time.monotonic()
        self.cpu_percent = 0.0
        self.rss_mb = self._rss_mb()

    @staticmethod
    def _cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _rss_mb() -> float:
        try:
            with open("/proc/self/statm", "rb") as handle:
                pages = int(handle.read().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3

    def sample(self) -> tuple[float, float]:
        cpu = self._cpu_seconds()
        wall = time.monotonic()
        elapsed = wall - self._last_wall
        if elapsed > 0:
            self.cpu_percent = 100.0 * (cpu - self._last_cpu) / elapsed
        self._last_cpu, self._last_wall = cpu, wall
        self.rss_mb = self._rss_mb()
        return self.cpu_percent, self.rss_mb
