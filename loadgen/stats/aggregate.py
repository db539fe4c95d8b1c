"""Cumulative statistics of a whole test: exact merges of every delta, the timeline and the warnings.

Snapshots and reports are built from it by ``stats.snapshot`` and ``stats.report``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loadgen.model.counters import COUNTER_FIELDS
from loadgen.model.notices import Notice
from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import ErrorTable
from loadgen.stats.recorder import (
    EXCEPTION_METHOD,
    MAX_ENDPOINTS,
    OTHER_ENDPOINTS,
    OVERFLOW_EXAMPLES,
    StatsDelta,
)
from loadgen.stats.report import Report, build_report
from loadgen.stats.snapshot import RowCache, Snapshot, TickContext, build_snapshot
from loadgen.stats.spans import SpanHistogram
from loadgen.stats.units import ms
from loadgen.stats.window import Window
from loadgen.stats.workers import WorkerRow

TIMELINE_SECONDS = 24 * 3600
LIVE_PROCESS_ROWS = 256  # past this many process rows, the live snapshot shows one row per machine
RECENT_SECONDS = 120  # closed seconds a late delta can still be put into, with their latency histograms
LATE_AFTER = 1.0  # a delta that ended this long before the current second began belongs to an earlier one


class Aggregate:
    """The truth of a test: exact merges of every delta, from one process or many workers."""

    def __init__(self, timeline_seconds: int = TIMELINE_SECONDS, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.started_at = wall_clock()
        self._t0 = clock()
        self.ended_at: float | None = None
        self.entries: dict[tuple[str, str], Entry] = {}
        self.errors = ErrorTable()
        self.new_errors = ErrorTable()  # since the last tick
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_FIELDS, 0)
        self.dropped = 0
        self.missed = 0
        self.iterations = 0
        self.exceptions = 0  # errors of the script itself (EXCEPTION rows)
        self.workers: dict[str, WorkerRow] = {}
        self._machines: dict[str, WorkerRow] = {}  # machines' own rows, kept aside once their processes report
        self._process_rows_of: dict[str, list[WorkerRow]] = {}  # a machine's processes' rows
        self.warnings: list[dict[str, Any]] = []
        self._warning_keys: dict[tuple[str, str], dict[str, Any]] = {}
        self.target_users = 0
        self.peak_users = 0
        self.timeline: deque[list[Any]] = deque(maxlen=timeline_seconds)
        self._second = Window()
        self._window_opened = self._t0
        self._recent: deque[tuple[float, Window, list[Any]]] = deque(maxlen=RECENT_SECONDS)
        self.events: list[dict[str, Any]] = []  # fleet events with their intervals (losses, fences, rejoins)
        self._latency_total = SpanHistogram()  # every request's latency, kept as deltas arrive
        self.overflowed: list[tuple[str, str]] = []  # examples of names counted in the other-endpoints rows
        self._rows: RowCache = {}  # the live snapshot's endpoint rows, until their histograms change
        self.stats_reset_at: float | None = None  # --reset-stats: seconds into the test

    # ---- input -------------------------------------------------------------------------------------------
    def restart_clock(self) -> None:
        self.started_at = self._wall_clock()
        self._t0 = self._window_opened = self._clock()

    def add_worker(self, worker_id: str, host: str, processes: int = 1) -> WorkerRow:
        row = self._machines.get(worker_id) or self.workers.get(worker_id)
        if row is None:
            row = self.workers[worker_id] = WorkerRow(worker_id, host, processes)
        row.processes = processes
        row.state = "running"
        return row

    def add_delta(self, worker_id: str, delta: StatsDelta, at: float | None = None) -> None:
        """Merge one process's delta into the totals and into the second it measured: the current one, or,
        for a delta that ended (``at``, on this aggregate's clock) before the current second began, the
        timeline's second it belongs to (a worker back from a network cut)."""
        window = self._second
        if at is not None and at < self._window_opened - LATE_AFTER:
            window = self._late_window(at)
        by_endpoint = window.by_endpoint
        for key, entry in delta.entries.items():
            total = self.entries.get(key)
            if total is None:
                if len(self.entries) >= MAX_ENDPOINTS and key[1] != OTHER_ENDPOINTS:
                    if len(self.overflowed) < OVERFLOW_EXAMPLES:
                        self.overflowed.append((key[0], key[1][:200]))
                    key = (key[0], OTHER_ENDPOINTS)
                    total = self.entries.get(key)
                if total is None:
                    total = self.entries[key] = Entry(key[0], key[1], histogram=SpanHistogram)
            if entry.latency.count or entry.phases is not None or entry.service is not None:
                total.merge(entry)
            else:  # counts only: its histograms travel with a later delta (stats.cadence)
                total.requests += entry.requests
                total.failures += entry.failures
                total.interrupted += entry.interrupted
                total.bytes += entry.bytes
            window.requests += entry.requests
            window.failures += entry.failures
            by_endpoint[key] = by_endpoint.get(key, 0) + entry.requests
            if delta.total is None:
                window.latency.merge(entry.latency)
                self._latency_total.merge(entry.latency)
        if delta.total is not None:
            window.latency.merge(delta.total)
            self._latency_total.merge(delta.total)
        if delta.overflowed and len(self.overflowed) < OVERFLOW_EXAMPLES:
            self.overflowed.extend(delta.overflowed[:OVERFLOW_EXAMPLES - len(self.overflowed)])
        for (method, _, _), count in delta.errors.counts.items():
            if method == EXCEPTION_METHOD:
                self.exceptions += count
        self.errors.merge(delta.errors)
        self.new_errors.merge(delta.errors)
        for name, value in delta.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        self.dropped += delta.dropped
        self.missed += delta.missed
        self.iterations += delta.iterations
        window.dropped += delta.dropped
        window.missed += delta.missed
        if window is not self._second:
            self._rewrite_row(window)
        if delta.processes:
            self._process_rows(worker_id, delta)
        row = self._machines.get(worker_id) or self.workers.get(worker_id)
        if row is None:
            if delta.processes:
                return  # a machine the master never announced (tests): its processes' rows only
            row = self.add_worker(worker_id, "local")
        row.users = delta.users  # a machine's users: every second, its processes' rows with their histograms
        row.peak_users = max(row.peak_users, delta.users)
        row.requests += delta.requests
        row.failures += delta.failures
        row.cpu_percent = delta.cpu_percent
        row.rss_mb = delta.rss_mb

    def _process_rows(self, worker_id: str, delta: StatsDelta) -> None:
        """A machine's delta (``worker --processes N``): one report row per process, in its machine's state."""
        machine = self.workers.pop(worker_id, None)  # the machine's own row gives way to its processes' rows
        if machine is not None:
            self._machines[worker_id] = machine
        machine = self._machines.get(worker_id)
        host = machine.host if machine is not None else "local"
        for process, (requests, failures, users, cpu, rss, lost) in delta.processes.items():
            row = self.workers.get(process)
            if row is None:
                row = self.workers[process] = WorkerRow(process, host, len(delta.processes))
                row.peer = worker_id
                self._process_rows_of.setdefault(worker_id, []).append(row)
            row.processes = max(row.processes, len(delta.processes))
            row.lost_process = bool(lost)
            if machine is not None:
                row.state = "lost" if lost else machine.state
            row.users = 0 if lost else int(users)
            row.peak_users = max(row.peak_users, int(users))
            row.requests = int(requests)  # the machine sends each process's running totals
            row.failures = int(failures)
            row.cpu_percent = float(cpu)
            row.rss_mb = float(rss)

    def live_rows(self) -> list[WorkerRow]:
        """The live snapshot's worker rows: every process's, or, past ``LIVE_PROCESS_ROWS``, one per machine
        (the report keeps every process's row)."""
        if len(self.workers) <= LIVE_PROCESS_ROWS or not self._machines:
            return list(self.workers.values())
        return [row for row in self.workers.values() if row.id == row.peer] + list(self._machines.values())

    def rows_of(self, worker_id: str) -> list[WorkerRow]:
        """A peer's report rows: its own, or its processes' (a machine)."""
        row = self.workers.get(worker_id)
        if row is not None:
            return [row]
        rows = list(self._process_rows_of.get(worker_id, ()))
        machine = self._machines.get(worker_id)
        return rows + ([machine] if machine is not None else [])

    def _late_window(self, at: float) -> Window:
        """The closed second that contains ``at``; the current one if it is older than the recent seconds."""
        for closed_at, window, _row in self._recent:
            if at <= closed_at:
                return window
        return self._second

    def _rewrite_row(self, window: Window) -> None:
        for _closed_at, recent, row in self._recent:
            if recent is window:
                p50, p95, p99 = window.latency.percentiles((0.5, 0.95, 0.99))
                row[2:9] = [window.requests, window.failures, window.dropped, window.missed, ms(p50), ms(p95),
                            ms(p99)]
                return

    def warn(self, kind: str, message: str, key: str | None = None) -> bool:
        """Add a warning once per (kind, key); returns whether it was new. Warned again, its message is replaced:
        a warning's counts stay live (``t`` is when it first appeared, ``updated`` when it last changed)."""
        ident = (kind, key if key is not None else message)
        known = self._warning_keys.get(ident)
        if known is not None:
            if known["message"] != message:
                known["message"] = message
                known["updated"] = round(self.elapsed(), 1)
            return False
        warning = {"kind": kind, "message": message, "t": round(self.elapsed(), 1)}
        self._warning_keys[ident] = warning
        self.warnings.append(warning)
        return True

    def notify(self, notice: Notice) -> bool:
        return self.warn(notice.kind, notice.message, key=notice.key)

    def add_event(self, kind: str, worker: str, start: float, end: float | None, users: int = 0,
                  detail: str = "") -> dict[str, Any]:
        """An interval the report must show (``start``/``end`` on this aggregate's clock; ``end`` None while
        open); returns the event so its end can be set later."""
        event: dict[str, Any] = {"kind": kind, "worker": worker, "t": round(start - self._t0, 2),
                                 "until": None if end is None else round(end - self._t0, 2),
                                 "users": users, "detail": detail}
        self.events.append(event)
        return event

    def close_event(self, event: dict[str, Any], end: float, detail: str | None = None) -> None:
        event["until"] = round(end - self._t0, 2)
        if detail is not None:
            event["detail"] = detail

    def since_start(self, at: float) -> float:
        """A time on this aggregate's clock as seconds into the test."""
        return at - self._t0

    # ---- time --------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        end = self.ended_at
        if end is not None:
            return end - self.started_at
        return self._clock() - self._t0

    @property
    def users(self) -> int:
        """Users running now: each worker's, and each machine's own count (its processes' rows may lag)."""
        machines = self._machines
        users = sum(row.users for row in self.workers.values() if row.state != "lost" and row.peer not in machines)
        return users + sum(row.users for row in machines.values() if row.state != "lost")

    def tick(self, context: TickContext | None = None) -> Snapshot:
        """Close the current second: append it to the timeline and return the live snapshot."""
        window = self._second
        users = self.users
        self.peak_users = max(self.peak_users, users)
        running = [r for r in self.workers.values() if r.state == "running"]
        cpu = max((r.cpu_percent for r in running), default=0.0)
        p50, p95, p99 = window.latency.percentiles((0.5, 0.95, 0.99))
        t = round(self.elapsed(), 3)
        previous = self.timeline[-1][0] if self.timeline else 0.0
        row = [t, users, window.requests, window.failures, window.dropped, window.missed,
               ms(p50), ms(p95), ms(p99), round(cpu, 1)]
        self.timeline.append(row)
        now = self._clock()
        self._recent.append((now, window, row))
        self._window_opened = now
        snapshot = build_snapshot(self, t, max(1e-3, t - previous), window, users, (p50, p95, p99),
                                  context or TickContext(), self._rows)
        self._second = Window()
        self.new_errors = ErrorTable()
        return snapshot

    def reset_stats(self) -> None:
        """--reset-stats: the endpoints, errors and latencies start again (the timeline and counts of the
        fleet's own health go on)."""
        self.entries = {}
        self.errors = ErrorTable()
        self.new_errors = ErrorTable()
        self._latency_total = SpanHistogram()
        self._rows = {}
        self.exceptions = 0
        self.stats_reset_at = round(self.elapsed(), 3)

    # ---- output ------------------------------------------------------------------------------------------
    def total_histogram(self, service: bool = False) -> SpanHistogram:
        if not service:
            return self._latency_total
        total = SpanHistogram()
        for entry in self.entries.values():
            if entry.service is not None:
                total.merge(entry.service)
        return total

    def finish(self) -> None:
        if self.ended_at is None:
            self.ended_at = self.started_at + (self._clock() - self._t0)

    def report(self, options: dict[str, Any] | None = None) -> Report:
        """The whole test as a ``loadgen.report/1`` dict."""
        return build_report(self, options)
