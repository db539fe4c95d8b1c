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


def sample_snapshot(**overrides: Any) -> dict[str, Any]:
    """A live snapshot as described in docs/contracts.md."""
    snap: dict[str, Any] = {
        "elapsed": 12.0,
        "users": 100,
        "rps": 812.0,
        "fps": 0.5,
        "requests": 9_000,
        "failures": 3,
        "current": {"p50_ms": 1.2, "p95_ms": 3.4, "p99_ms": 9.9},
        "cumulative": {"p50_ms": 1.3, "p95_ms": 3.6, "p99_ms": 11.0},
        "endpoints": [
            {"method": "GET", "name": "/", "rps": 800.0, "p95_ms": 3.0, "requests": 8_000, "failures": 0},
            {
                "method": "POST",
                "name": "/api/orders",
                "rps": 12.0,
                "p95_ms": 30.0,
                "requests": 1_000,
                "failures": 3,
            },
        ],
        "new_errors": [{"method": "POST", "name": "/api/orders", "error": "HTTP 503", "count": 1}],
        "workers": [],
        "warnings": [{"kind": "cpu", "message": "master CPU high"}],
    }
    snap.update(overrides)
    return snap
