"""Statistics of one endpoint, keyed by (method, name)."""

from __future__ import annotations

from collections.abc import Callable

from loadgen.stats.histogram import Histogram, Latencies
from loadgen.stats.phases import Phases


class Entry:
    """Requests, failures, bytes, latency histograms and the phases of one (method, name).

    A recorder's entries hold `Histogram`s; a merging side passes its own kind (``histogram=SpanHistogram``).
    A service histogram created by a merge is of the kind of ``latency``; phases, of the kind merged in.
    """

    __slots__ = ("method", "name", "requests", "failures", "interrupted", "bytes", "latency", "service", "phases")

    def __init__(self, method: str, name: str, with_service: bool = False,
                 histogram: Callable[[], Latencies] = Histogram) -> None:
        self.method = method
        self.name = name
        self.requests = 0
        self.failures = 0
        self.interrupted = 0  # cut off from outside (a forced stop, a fence): neither a success nor a failure
        self.bytes = 0
        self.latency: Latencies = histogram()
        self.service: Latencies | None = histogram() if with_service else None
        self.phases: Phases | None = None  # HTTP requests only (not measure())

    def merge(self, other: Entry) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.interrupted += other.interrupted
        self.bytes += other.bytes
        self.latency.merge(other.latency)
        if other.service is not None:
            if self.service is None:
                self.service = type(self.latency)()
            self.service.merge(other.service)
        if other.phases is not None:
            if self.phases is None:  # tallies of the kind merged in (received: `SpanHistogram`)
                self.phases = Phases(tally=type(other.phases.ttfb))
            self.phases.merge(other.phases)
