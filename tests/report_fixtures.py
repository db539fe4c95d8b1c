"""Reusable ``loadgen.report/1`` and snapshot dicts for tests."""

from __future__ import annotations

import copy
from typing import Any


def _lat(scale: float) -> dict[str, float]:
    return {
        "min": 0.4 * scale,
        "mean": 3.1 * scale,
        "p50": 2.5 * scale,
        "p90": 6.0 * scale,
        "p95": 8.2 * scale,
        "p99": 14.7 * scale,
        "p999": 48.0 * scale,
        "max": 120.5 * scale,
    }


def sample_report() -> dict[str, Any]:
    """A realistic 60-second, 2-worker run over three endpoints (one with a unicode name)."""
    endpoints = [
        {
            "method": "GET",
            "name": "/",
            "requests": 30_000,
            "failures": 12,
            "rps": 500.0,
            "bytes_received": 45_000_000,
            "latency_ms": _lat(1.0),
            "service_ms": _lat(0.9),
        },
        {
            "method": "POST",
            "name": "/api/orders",
            "requests": 12_000,
            "failures": 240,
            "rps": 200.0,
            "bytes_received": 3_600_000,
            "latency_ms": _lat(4.0),
        },
        {
            "method": "GET",
            "name": "/produits/café-crème/日本語",
            "requests": 6_000,
            "failures": 0,
            "rps": 100.0,
            "bytes_received": 9_000_000,
            "latency_ms": _lat(0.5),
        },
    ]
    errors = [
        {"method": "POST", "name": "/api/orders", "error": "HTTP 503 Service Unavailable", "count": 200},
        {"method": "POST", "name": "/api/orders", "error": "ReadTimeout: timed out after 60.0s", "count": 40},
        {
            "method": "GET",
            "name": "/",
            "error": "ConnectionResetError(104, 'Connection reset by peer')",
            "count": 12,
        },
    ]
    return {
        "schema": "loadgen.report/1",
        "started_at": "2024-05-01T12:00:00+00:00",
        "duration_s": 60.0,
        "users": {"target": 200, "peak": 200},
        "totals": {
            "requests": 48_000,
            "failures": 252,
            "dropped": 7,
            "rps": 800.0,
            "bytes_received": 57_600_000,
            "latency_ms": _lat(2.0),
            "service_ms": _lat(1.8),
        },
        "endpoints": endpoints,
        "errors": errors,
        "connections": {
            "opened": 220,
            "closed": 210,
            "tls_handshakes": 20,
            "tls_resumed": 200,
            "dns_lookups": 4,
            "dns_hits": 216,
            "requests_per_connection": 218.2,
        },
        "workers": [
            {
                "id": "w-1a2b",
                "host": "loadbox-1",
                "state": "done",
                "users": 100,
                "requests": 24_100,
                "cpu_percent": 71.5,
                "rss_mb": 88.2,
            },
            {
                "id": "w-3c4d",
                "host": "loadbox-2",
                "state": "done",
                "users": 100,
                "requests": 23_900,
                "cpu_percent": 93.0,
                "rss_mb": 90.1,
            },
        ],
        "warnings": [
            {"kind": "cpu", "message": "worker w-3c4d CPU above 90% for 12s; results may be skewed"}
        ],
        "thresholds": [
            {"expression": "p99<300ms", "observed": 29.4, "pass": True},
            {"expression": "error_rate<0.5%", "observed": 0.525, "pass": False},
        ],
        "options": {"users": 200, "spawn_rate": 50.0, "run_time": 60.0, "host": "https://example.test"},
        "timeline": [
            {
                "t": float(t),
                "users": min(200, 50 * t),
                "requests": 800 * t,
                "failures": 4 * t,
                "dropped": 0,
                "missed": 0,
                "p50_ms": 5.0,
                "p95_ms": 16.4,
                "p99_ms": 29.4,
                "cpu_percent": 80.0,
            }
            for t in range(1, 61)
        ],
    }


def empty_report() -> dict[str, Any]:
    """A run that completed no requests (all counters zero, no percentiles)."""
    report = sample_report()
    zero_lat = dict.fromkeys(_lat(1.0), 0)
    report.update(
        duration_s=0.0,
        totals={
            "requests": 0,
            "failures": 0,
            "dropped": 0,
            "rps": 0.0,
            "bytes_received": 0,
            "latency_ms": zero_lat,
        },
        endpoints=[],
        errors=[],
        workers=[],
        warnings=[],
        thresholds=[],
        timeline=[],
        connections=dict.fromkeys(report["connections"], 0),
    )
    return copy.deepcopy(report)


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def sample_snapshot(**overrides: Any) -> dict[str, Any]:
    """A live snapshot from a real ``Aggregate`` (the contract in docs/contracts.md): second 12 of a test with
    100 users; 812 requests in that second (800 GET /, 12 POST /api/orders), 9,000 in all, 3 failures."""
    from loadgen.stats.aggregate import Aggregate
    from loadgen.stats.recorder import Recorder
    from loadgen.stats.snapshot import TickContext

    clock = _Clock()
    aggregate = Aggregate(clock=clock)
    aggregate.add_worker("w1", "host-1")
    earlier, last = Recorder(), Recorder()
    earlier.users = last.users = 100
    for _ in range(8000 - 800):
        earlier.record("GET", "/", 1000, 100)
    for _ in range(1000 - 12 - 2):
        earlier.record("POST", "/api/orders", 5000, 100)
    for _ in range(2):
        earlier.record("POST", "/api/orders", 5000, 100, error="HTTP 503")
    # the last second: p50/p95/p99 land on bucket midpoints (1.207, 3.407 and 9.887 ms)
    values = [1207] * 500 + [3407] * 295 + [9887] * 17
    for value in values[:800]:
        last.record("GET", "/", value, 100)
    for value in values[800:811]:
        last.record("POST", "/api/orders", value, 100)
    last.record("POST", "/api/orders", values[811], 100, error="HTTP 503")
    clock.t = 11.0
    aggregate.add_delta("w1", earlier.flush())
    aggregate.tick(TickContext())
    clock.t = 12.0
    aggregate.add_delta("w1", last.flush())
    aggregate.warn("cpu", "master CPU high")
    snap = aggregate.tick(TickContext(run_time=overrides.pop("run_time", None)))
    snap.update(overrides)
    return snap
