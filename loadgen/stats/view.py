"""What snapshots and reports read of the aggregate (a protocol, so they need not import it)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import ErrorTable
from loadgen.stats.histogram import Latencies
from loadgen.stats.workers import WorkerRow


class AggregateView(Protocol):
    started_at: float
    entries: dict[tuple[str, str], Entry]
    errors: ErrorTable
    new_errors: ErrorTable
    counters: dict[str, int]
    dropped: int
    missed: int
    iterations: int
    workers: dict[str, WorkerRow]
    warnings: list[dict[str, Any]]
    events: list[dict[str, Any]]
    target_users: int
    peak_users: int
    timeline: deque[list[Any]]

    @property
    def users(self) -> int: ...

    def elapsed(self) -> float: ...

    def total_histogram(self, service: bool = False) -> Latencies: ...

    def live_rows(self) -> Iterable[WorkerRow]: ...
