"""Cumulative statistics of a whole test: merges deltas, keeps the timeline, builds reports and snapshots."""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime, timezone

from loadgen.stats.entry import Entry
from loadgen.stats.errors import ErrorTable
from loadgen.stats.histogram import Histogram
from loadgen.stats.recorder import MAX_ENDPOINTS, OTHER_ENDPOINTS, StatsDelta

SCHEMA = "loadgen.report/1"
TIMELINE_SECONDS = 24 * 3600
_QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
COUNTER_KEYS = ("opened", "closed", "tls_full", "tls_resumed", "dns_lookups", "dns_hits", "dns_failures",
                "requests", "bytes_sent", "bytes_received")


def latency_summary(hist: Histogram) -> dict[str, float]:
    """min/mean/percentiles/max of a microsecond histogram, in milliseconds."""
    p50, p90, p95, p99, p999 = hist.percentiles(_QUANTILES)
    return {
        "min": _ms(hist.min), "mean": round(hist.mean / 1000.0, 3), "p50": _ms(p50), "p90": _ms(p90),
        "p95": _ms(p95), "p99": _ms(p99), "p999": _ms(p999), "max": _ms(hist.max),
    }


def _ms(us: int) -> float:
    return round(us / 1000.0, 3)


class WorkerRow:
    """What the aggregate knows of one worker process."""

    __slots__ = ("id", "host", "state", "users", "peak_users", "requests", "failures", "cpu_percent", "rss_mb",
                 "processes")

    def __init__(self, worker_id: str, host: str, processes: int = 1) -> None:
        self.id = worker_id
        self.host = host
        self.state = "running"
        self.users = 0
        self.peak_users = 0
        self.requests = 0
        self.failures = 0
        self.cpu_percent = 0.0
        self.rss_mb = 0.0
        self.processes = processes

    def as_dict(self, final: bool = False) -> dict:
        """Live: current users; final (the report): the most users this worker ran."""
        return {"id": self.id, "host": self.host, "state": self.state,
                "users": self.peak_users if final else self.users,
                "requests": self.requests, "failures": self.failures,
                "cpu_percent": round(self.cpu_percent, 1), "rss_mb": round(self.rss_mb, 1)}


class Aggregate:
    """The truth of a test: exact merges of every delta, from one process or many workers."""

    def __init__(self, timeline_seconds: int = TIMELINE_SECONDS) -> None:
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self.ended_at: float | None = None
        self.entries: dict[tuple[str, str], Entry] = {}
        self.errors = ErrorTable()
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_KEYS, 0)
        self.dropped = 0
        self.missed = 0
        self.workers: dict[str, WorkerRow] = {}
        self.warnings: list[dict] = []
        self._warning_keys: set[tuple[str, str]] = set()
        self.target_users = 0
        self.peak_users = 0
        self.timeline: deque[tuple] = deque(maxlen=timeline_seconds)
        self._second = _Window()
        self._last_second = _Window()
        self._new_errors = ErrorTable()
        self._latency_total = Histogram()  # every request's latency, kept as deltas arrive

    # ---- input -------------------------------------------------------------------------------------------
    def restart_clock(self) -> None:
        self.started_at = time.time()
        self._t0 = time.monotonic()

    def add_worker(self, worker_id: str, host: str, processes: int = 1) -> WorkerRow:
        row = self.workers.get(worker_id)
        if row is None:
            row = self.workers[worker_id] = WorkerRow(worker_id, host, processes)
        row.state = "running"
        return row

    def add_delta(self, worker_id: str, delta: StatsDelta) -> None:
        """Merge one process's delta into the totals and the current second."""
        window = self._second
        for key, entry in delta.entries.items():
            total = self.entries.get(key)
            if total is None:
                if len(self.entries) >= MAX_ENDPOINTS and key[1] != OTHER_ENDPOINTS:
                    key = (key[0], OTHER_ENDPOINTS)
                    total = self.entries.get(key)
                if total is None:
                    total = self.entries[key] = Entry(key[0], key[1])
            total.merge(entry)
            window.requests += entry.requests
            window.failures += entry.failures
            if delta.total is None:
                window.latency.merge(entry.latency)
                self._latency_total.merge(entry.latency)
        if delta.total is not None:
            window.latency.merge(delta.total)
            self._latency_total.merge(delta.total)
        self.errors.merge(delta.errors)
        self._new_errors.merge(delta.errors)
        for key, value in delta.counters.items():
            self.counters[key] = self.counters.get(key, 0) + value
        self.dropped += delta.dropped
        self.missed += delta.missed
        window.dropped += delta.dropped
        window.missed += delta.missed
        row = self.workers.get(worker_id)
        if row is None:
            row = self.add_worker(worker_id, "local")
        row.users = delta.users
        row.peak_users = max(row.peak_users, delta.users)
        row.requests += delta.requests
        row.failures += delta.failures
        row.cpu_percent = delta.cpu_percent
        row.rss_mb = delta.rss_mb

    def warn(self, kind: str, message: str, key: str | None = None) -> bool:
        """Add a warning once per (kind, key); returns whether it was new."""
        ident = (kind, key if key is not None else message)
        if ident in self._warning_keys:
            return False
        self._warning_keys.add(ident)
        self.warnings.append({"kind": kind, "message": message, "t": round(self.elapsed(), 1)})
        return True

    # ---- time --------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        end = self.ended_at
        if end is not None:
            return end - self.started_at
        return time.monotonic() - self._t0

    @property
    def users(self) -> int:
        return sum(row.users for row in self.workers.values() if row.state != "lost")

    def tick(self) -> dict:
        """Close the current second: append it to the timeline and return the live snapshot."""
        window = self._second
        users = self.users
        self.peak_users = max(self.peak_users, users)
        running = [r for r in self.workers.values() if r.state == "running"]
        cpu = max((r.cpu_percent for r in running), default=0.0)
        p50, p95, p99 = window.latency.percentiles((0.5, 0.95, 0.99))
        t = round(self.elapsed(), 3)
        self.timeline.append((t, users, window.requests, window.failures, window.dropped, window.missed,
                              _ms(p50), _ms(p95), _ms(p99), round(cpu, 1)))
        snapshot = self._snapshot(t, window, users, (p50, p95, p99))
        self._last_second = window
        self._second = _Window()
        self._new_errors = ErrorTable()
        return snapshot

    def _snapshot(self, t: float, window: _Window, users: int, current: tuple[int, int, int]) -> dict:
        interval = max(1e-3, t - (self.timeline[-2][0] if len(self.timeline) > 1 else 0.0))
        total = self.total_histogram()
        c50, c95, c99 = total.percentiles((0.5, 0.95, 0.99))
        requests = sum(e.requests for e in self.entries.values())
        failures = sum(e.failures for e in self.entries.values())
        return {
            "elapsed": t,
            "users": users,
            "target_users": self.target_users,
            "rps": round(window.requests / interval, 1),
            "fps": round(window.failures / interval, 1),
            "requests": requests,
            "failures": failures,
            "dropped": self.dropped,
            "current": {"p50_ms": _ms(current[0]), "p95_ms": _ms(current[1]), "p99_ms": _ms(current[2])},
            "cumulative": {"p50_ms": _ms(c50), "p95_ms": _ms(c95), "p99_ms": _ms(c99)},
            "endpoints": [
                {"method": e.method, "name": e.name, "requests": e.requests, "failures": e.failures,
                 "p95_ms": _ms(e.latency.percentile(0.95))}
                for e in sorted(self.entries.values(), key=lambda e: (e.name, e.method))
            ],
            "new_errors": self._new_errors.rows(),
            "workers": [row.as_dict() for row in self.workers.values()],
            "warnings": list(self.warnings),
        }

    # ---- output ------------------------------------------------------------------------------------------
    def total_histogram(self, service: bool = False) -> Histogram:
        if not service:
            return self._latency_total
        total = Histogram()
        for entry in self.entries.values():
            hist = entry.service if service else entry.latency
            if hist is not None:
                total.merge(hist)
        return total

    def finish(self) -> None:
        if self.ended_at is None:
            self.ended_at = self.started_at + (time.monotonic() - self._t0)

    def report(self, options: dict | None = None) -> dict:
        """The whole test as a ``loadgen.report/1`` dict."""
        duration = max(self.elapsed(), 1e-9)
        entries = sorted(self.entries.values(), key=lambda e: (e.name, e.method))
        total = self.total_histogram()
        requests = sum(e.requests for e in entries)
        totals = {
            "requests": requests,
            "failures": sum(e.failures for e in entries),
            "dropped": self.dropped,
            "missed": self.missed,
            "rps": round(requests / duration, 2),
            "bytes_received": sum(e.bytes for e in entries),
            "latency_ms": latency_summary(total),
        }
        has_service = any(e.service is not None for e in entries)
        if has_service:
            totals["service_ms"] = latency_summary(self.total_histogram(service=True))
        endpoints = []
        for e in entries:
            row = {"method": e.method, "name": e.name, "requests": e.requests, "failures": e.failures,
                   "rps": round(e.requests / duration, 2), "bytes_received": e.bytes,
                   "latency_ms": latency_summary(e.latency)}
            if e.service is not None:
                row["service_ms"] = latency_summary(e.service)
            endpoints.append(row)
        c = self.counters
        opened = c.get("opened", 0)
        connections = {
            "opened": opened,
            "closed": c.get("closed", 0),
            "tls_handshakes": c.get("tls_full", 0) + c.get("tls_resumed", 0),
            "tls_resumed": c.get("tls_resumed", 0),
            "tls_full": c.get("tls_full", 0),
            "dns_lookups": c.get("dns_lookups", 0),
            "dns_hits": c.get("dns_hits", 0),
            "requests_per_connection": round(c.get("requests", 0) / opened, 2) if opened else 0.0,
        }
        keys = ("t", "users", "requests", "failures", "dropped", "missed", "p50_ms", "p95_ms", "p99_ms",
                "cpu_percent")
        return {
            "schema": SCHEMA,
            "started_at": datetime.fromtimestamp(self.started_at, timezone.utc).isoformat(),
            "duration_s": round(duration, 3),
            "users": {"target": self.target_users, "peak": max(self.peak_users, self.users)},
            "totals": totals,
            "endpoints": endpoints,
            "errors": self.errors.rows(),
            "connections": connections,
            "workers": [row.as_dict(final=True) for row in self.workers.values()],
            "warnings": list(self.warnings),
            "thresholds": [],
            "options": dict(options or {}),
            "timeline": [dict(zip(keys, point)) for point in self.timeline],
        }


class _Window:
    """One second of merged deltas."""

    __slots__ = ("requests", "failures", "dropped", "missed", "latency")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.dropped = 0
        self.missed = 0
        self.latency = Histogram()
