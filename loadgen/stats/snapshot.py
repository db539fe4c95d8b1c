"""The live snapshot, built once a second in this one place from the aggregate (docs/contracts.md)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from loadgen.stats.endpoint import Entry
from loadgen.stats.units import ms
from loadgen.stats.view import AggregateView
from loadgen.stats.window import Window

Snapshot = dict[str, Any]
LIVE_ENDPOINTS = 200  # endpoint rows of a live snapshot at most: the busiest (the report has every one)
RowCache = dict[tuple[str, str], tuple[int, dict[str, Any]]]  # an endpoint's row, by its latency count then


@dataclass(frozen=True)
class TickContext:
    """What the controller adds to each snapshot: the model, its current rate and the planned run time."""

    model: str = "closed"
    rate: float | None = None
    run_time: float | None = None


def build_snapshot(aggregate: AggregateView, t: float, interval: float, window: Window, users: int,
                   current: tuple[int, int, int], context: TickContext, rows: RowCache | None = None) -> Snapshot:
    """The snapshot of the second that just closed (``window``, ``interval`` seconds long). ``rows`` keeps
    each endpoint's percentiles until its histogram changes, so an idle endpoint costs a dict lookup."""
    c50, c95, c99 = aggregate.total_histogram().percentiles((0.5, 0.95, 0.99))
    every = aggregate.entries.values()
    hidden = max(0, len(every) - LIVE_ENDPOINTS)
    shown = heapq.nlargest(LIVE_ENDPOINTS, every, key=lambda e: e.requests) if hidden else every
    entries = sorted(shown, key=lambda e: (e.name, e.method))
    by_endpoint = window.by_endpoint
    cache: RowCache = rows if rows is not None else {}
    snapshot: Snapshot = {
        "elapsed": t,
        "ts": round(aggregate.started_at + t, 3),
        "state": "running",
        "model": context.model,
        "users": users,
        "target_users": aggregate.target_users,
        "rps": round(window.requests / interval, 1),
        "fps": round(window.failures / interval, 1),
        "requests": sum(e.requests for e in every),
        "failures": sum(e.failures for e in every),
        "interrupted": sum(e.interrupted for e in every),
        "dropped": aggregate.dropped,
        "current": {"p50_ms": ms(current[0]), "p95_ms": ms(current[1]), "p99_ms": ms(current[2])},
        "cumulative": {"p50_ms": ms(c50), "p95_ms": ms(c95), "p99_ms": ms(c99)},
        "endpoints": [_endpoint(e, by_endpoint.get((e.method, e.name), 0) / interval, cache) for e in entries],
        "endpoints_hidden": hidden,  # the quietest endpoints past LIVE_ENDPOINTS, left out of this snapshot
        "new_errors": aggregate.new_errors.rows(),
        "workers": [row.as_dict() for row in aggregate.live_rows()],
        "warnings": [dict(w) for w in aggregate.warnings],
    }
    if context.rate is not None:
        snapshot["rate"] = context.rate
    if context.run_time:
        snapshot["run_time"] = context.run_time
    return snapshot


def _endpoint(entry: Entry, rps: float, cache: RowCache) -> dict[str, Any]:
    """An endpoint's row of the snapshot; with the cumulative p50/p95 of every phase its requests paid."""
    key = (entry.method, entry.name)
    samples = entry.latency.count
    cached = cache.get(key)
    if cached is not None and cached[0] == samples:
        row = dict(cached[1])
    else:
        row = {"method": entry.method, "name": entry.name, "p95_ms": ms(entry.latency.percentile(0.95))}
        if entry.phases is not None:
            row["phases"] = {name: {"count": tally.count, "p50_ms": ms(p50), "p95_ms": ms(p95)}
                             for name, tally in entry.phases.items()
                             for p50, p95 in (tally.percentiles((0.5, 0.95)),)}
        cache[key] = (samples, row)
        row = dict(row)
    row["requests"], row["failures"], row["interrupted"] = entry.requests, entry.failures, entry.interrupted
    row["rps"] = round(rps, 1)
    return row
