"""One second of merged deltas: what the live view and the timeline show for that second."""

from __future__ import annotations

from loadgen.stats.spans import SpanHistogram


class Window:
    """Requests, failures, dropped and missed starts, latency, and requests per endpoint, of one second."""

    __slots__ = ("requests", "failures", "dropped", "missed", "latency", "by_endpoint")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.dropped = 0
        self.missed = 0
        self.latency = SpanHistogram()
        self.by_endpoint: dict[tuple[str, str], int] = {}
