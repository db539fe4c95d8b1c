"""The ``loadgen.report/1`` dict of a whole test, built from the aggregate (every output renders it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from loadgen.stats.endpoint import Entry
from loadgen.stats.histogram import Latencies
from loadgen.stats.phases import Phases
from loadgen.stats.units import ms
from loadgen.stats.view import AggregateView

SCHEMA = "loadgen.report/1"
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
PHASE_QUANTILES = (0.5, 0.9, 0.95, 0.99)
TIMELINE_FIELDS = ("t", "users", "requests", "failures", "dropped", "missed", "p50_ms", "p95_ms", "p99_ms",
                   "cpu_percent")

Report = dict[str, Any]


def latency_summary(hist: Latencies) -> dict[str, float]:
    """min/mean/percentiles/max of a microsecond histogram, in milliseconds."""
    p50, p90, p95, p99, p999 = hist.percentiles(QUANTILES)
    return {
        "min": ms(hist.min), "mean": round(hist.mean / 1000.0, 3), "p50": ms(p50), "p90": ms(p90),
        "p95": ms(p95), "p99": ms(p99), "p999": ms(p999), "max": ms(hist.max),
    }


def phase_summary(phases: Phases) -> dict[str, dict[str, float]]:
    """Per phase some request paid: how many paid it, mean, percentiles and max, in milliseconds."""
    out = {}
    for name, tally in phases.items():
        p50, p90, p95, p99 = tally.percentiles(PHASE_QUANTILES)
        out[name] = {"count": tally.count, "mean": round(tally.mean / 1000.0, 3), "p50": ms(p50), "p90": ms(p90),
                     "p95": ms(p95), "p99": ms(p99), "max": ms(tally.max)}
    return out


def all_phases(entries: Iterable[Entry]) -> Phases | None:
    """Every endpoint's phases merged (None when no request recorded any)."""
    total: Phases | None = None
    for entry in entries:
        if entry.phases is not None:
            if total is None:
                total = Phases(tally=type(entry.phases.ttfb))
            total.merge(entry.phases)
    return total


def build_report(aggregate: AggregateView, options: dict[str, Any] | None = None) -> Report:
    """The whole test as a ``loadgen.report/1`` dict."""
    duration = max(aggregate.elapsed(), 1e-9)
    entries = sorted(aggregate.entries.values(), key=lambda e: (e.name, e.method))
    requests = sum(e.requests for e in entries)
    totals: dict[str, Any] = {
        "requests": requests,
        "failures": sum(e.failures for e in entries),
        "interrupted": sum(e.interrupted for e in entries),
        "dropped": aggregate.dropped,
        "missed": aggregate.missed,
        "iterations": aggregate.iterations,
        "rps": round(requests / duration, 2),
        "bytes_received": sum(e.bytes for e in entries),
        "latency_ms": latency_summary(aggregate.total_histogram()),
    }
    if any(e.service is not None for e in entries):
        totals["service_ms"] = latency_summary(aggregate.total_histogram(service=True))
    merged = all_phases(entries)
    if merged is not None:
        totals["phases_ms"] = phase_summary(merged)
    endpoints = []
    for e in entries:
        row: dict[str, Any] = {"method": e.method, "name": e.name, "requests": e.requests, "failures": e.failures,
                               "interrupted": e.interrupted, "rps": round(e.requests / duration, 2), "bytes_received": e.bytes,
                               "latency_ms": latency_summary(e.latency)}
        if e.service is not None:
            row["service_ms"] = latency_summary(e.service)
        if e.phases is not None:
            row["phases_ms"] = phase_summary(e.phases)
        endpoints.append(row)
    return {
        "schema": SCHEMA,
        "started_at": datetime.fromtimestamp(aggregate.started_at, timezone.utc).isoformat(),
        "duration_s": round(duration, 3),
        "users": {"target": aggregate.target_users, "peak": max(aggregate.peak_users, aggregate.users)},
        "totals": totals,
        "endpoints": endpoints,
        "errors": aggregate.errors.rows(),
        "connections": connection_summary(aggregate.counters),
        "workers": [row.as_dict(final=True) for row in aggregate.workers.values()],
        "warnings": [dict(w) for w in aggregate.warnings],
        "events": [dict(event) for event in aggregate.events],
        "thresholds": [],
        "options": dict(options or {}),
        "timeline": [dict(zip(TIMELINE_FIELDS, point)) for point in aggregate.timeline],
    }


def connection_summary(c: dict[str, int]) -> dict[str, Any]:
    """The report's ``connections`` block from the summed connection counters."""
    opened = c.get("opened", 0)
    return {
        "opened": opened,
        "closed": c.get("closed", 0),
        "tls_handshakes": c.get("tls_full", 0) + c.get("tls_resumed", 0),
        "tls_resumed": c.get("tls_resumed", 0),
        "tls_full": c.get("tls_full", 0),
        "dns_lookups": c.get("dns_lookups", 0),
        "dns_hits": c.get("dns_hits", 0),
        "retries": c.get("retries", 0),
        "idle_dropped": c.get("idle_dropped", 0),
        "connect_fallbacks": c.get("connect_fallbacks", 0),
        "requests_per_connection": round(c.get("requests", 0) / opened, 2) if opened else 0.0,
    }
