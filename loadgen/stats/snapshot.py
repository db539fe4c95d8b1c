"""The live snapshot, built once a second in this one place from the aggregate (docs/contracts.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadgen.stats.endpoint import Entry
from loadgen.stats.units import ms
from loadgen.stats.view import AggregateView
from loadgen.stats.window import Window

Snapshot = dict[str, Any]


@dataclass(frozen=True)
class TickContext:
    """What the controller adds to each snapshot: the model, its current rate and the planned run time."""

    model: str = "closed"
    rate: float | None = None
    run_time: float | None = None


def build_snapshot(aggregate: AggregateView, t: float, interval: float, window: Window, users: int,
                   current: tuple[int, int, int], context: TickContext) -> Snapshot:
    """The snapshot of the second that just closed (``window``, ``interval`` seconds long)."""
    c50, c95, c99 = aggregate.total_histogram().percentiles((0.5, 0.95, 0.99))
    entries = sorted(aggregate.entries.values(), key=lambda e: (e.name, e.method))
    by_endpoint = window.by_endpoint
    snapshot: Snapshot = {
        "elapsed": t,
        "ts": round(aggregate.started_at + t, 3),
        "state": "running",
        "model": context.model,
        "users": users,
        "target_users": aggregate.target_users,
        "rps": round(window.requests / interval, 1),
        "fps": round(window.failures / interval, 1),
        "requests": sum(e.requests for e in entries),
        "failures": sum(e.failures for e in entries),
        "interrupted": sum(e.interrupted for e in entries),
        "dropped": aggregate.dropped,
        "current": {"p50_ms": ms(current[0]), "p95_ms": ms(current[1]), "p99_ms": ms(current[2])},
        "cumulative": {"p50_ms": ms(c50), "p95_ms": ms(c95), "p99_ms": ms(c99)},
        "endpoints": [_endpoint(e, by_endpoint.get((e.method, e.name), 0) / interval) for e in entries],
        "new_errors": aggregate.new_errors.rows(),
        "workers": [row.as_dict() for row in aggregate.live_rows()],
        "warnings": list(aggregate.warnings),
    }
    if context.rate is not None:
        snapshot["rate"] = context.rate
    if context.run_time:
        snapshot["run_time"] = context.run_time
    return snapshot


def _endpoint(entry: Entry, rps: float) -> dict[str, Any]:
    """An endpoint's row of the snapshot; with the cumulative p50/p95 of every phase its requests paid."""
    row: dict[str, Any] = {"method": entry.method, "name": entry.name, "requests": entry.requests,
                           "failures": entry.failures, "interrupted": entry.interrupted, "rps": round(rps, 1),
                           "p95_ms": ms(entry.latency.percentile(0.95))}
    if entry.phases is not None:
        row["phases"] = {name: {"count": tally.count, "p50_ms": ms(p50), "p95_ms": ms(p95)}
                         for name, tally in entry.phases.items()
                         for p50, p95 in (tally.percentiles((0.5, 0.95)),)}
    return row
