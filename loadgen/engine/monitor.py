"""This process's own health: CPU and memory sampled once a second, and a blocked event loop."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import deque
from typing import Any


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


class BlockingMonitor:
    """Calls that block the gevent event loop (a C call that never yields, a module imported before
    patching): gevent's monitor thread notices the hub has not run for ``threshold`` seconds and emits
    ``EventLoopBlocked``; we keep the blocked stack (the events of one block are merged) and a heartbeat
    greenlet measures how long the loop really stood still.

    The events arrive on gevent's monitor thread: they are only appended to a deque (atomic) there and
    turned into ``(seconds, Where)`` on the event loop by ``drain()``.
    """

    HEARTBEAT = 0.1
    _instance: BlockingMonitor | None = None

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._events: deque[tuple[float, int, Any]] = deque(maxlen=1000)
        self._gaps: deque[tuple[float, float]] = deque(maxlen=1000)  # (loop resumed at, seconds stood still)
        self._heartbeat: Any = None
        self.last_beat = time.monotonic()
        self.guard: Any = None  # its `loop_guard.LoopGuard`, once one is started  # the heartbeat's last run: read by `loop_guard.LoopGuard` (a thread)

    @classmethod
    def enable(cls, threshold: float) -> BlockingMonitor | None:
        """Start (once per process) gevent's monitor thread with ``threshold``; None if it cannot run."""
        if threshold <= 0:
            if cls._instance is not None:
                cls._instance.threshold = 0.0
            return None
        import gevent
        import zope.event

        gevent.config.max_blocking_time = threshold
        if cls._instance is None:
            try:
                gevent.config.print_blocking_reports = False
            except AttributeError:  # older gevent prints the report; the event still comes
                pass
            gevent.config.monitor_thread = True
            if gevent.get_hub().start_periodic_monitoring_thread() is None:
                return None
            cls._instance = cls(threshold)
            zope.event.subscribers.append(cls._instance._on_event)
        monitor = cls._instance
        monitor.threshold = threshold
        monitor._events.clear()
        monitor._gaps.clear()
        if monitor._heartbeat is None or monitor._heartbeat.dead:
            monitor._heartbeat = gevent.spawn(monitor._beat)
        return monitor

    # -- monitor thread
    def _on_event(self, event: Any) -> None:
        from gevent.events import EventLoopBlocked

        if not isinstance(event, EventLoopBlocked) or self.threshold <= 0:
            return
        hub = getattr(event, "hub", None)
        ident = getattr(hub, "thread_ident", None)
        frame = sys._current_frames().get(ident) if ident is not None else None
        from loadgen.engine.stalls import where_frame

        self._events.append((time.monotonic(), id(event.greenlet), where_frame(frame)))

    # -- event loop
    def _beat(self) -> None:
        import gevent

        last = self.last_beat = time.monotonic()
        while True:
            gevent.sleep(self.HEARTBEAT)
            now = self.last_beat = time.monotonic()
            if now - last > self.threshold > 0:
                self._gaps.append((now, now - last - self.HEARTBEAT))
            last = now

    def drain(self) -> list[tuple[float, Any]]:
        """Blocks seen since the last call: ``(seconds the loop stood still, Where)``, one per block."""
        episodes: list[list[Any]] = []  # [first event, last event, greenlet id, Where]
        gap = 2.5 * max(self.threshold, 0.05)
        while self._events:
            t, greenlet, where = self._events.popleft()
            ep = episodes[-1] if episodes else None
            if ep is not None and greenlet == ep[2] and t - ep[1] <= gap:
                ep[1] = t
                if where.script and not ep[3].script:
                    ep[3] = where
                continue
            episodes.append([t, t, greenlet, where])
        gaps = list(self._gaps)
        self._gaps.clear()
        result = []
        for first, last, _, where in episodes:
            seconds = last - first + self.threshold  # a lower bound; the heartbeat knows better
            for resumed, length in gaps:
                if resumed - length - self.HEARTBEAT <= first <= resumed + self.HEARTBEAT:
                    seconds = max(seconds, length)
                    break
            result.append((seconds, where))
        return result
