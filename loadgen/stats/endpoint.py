"""Statistics of one endpoint, keyed by (method, name)."""

from __future__ import annotations

from loadgen.stats.histogram import Histogram
from loadgen.stats.phases import Phases


class Entry:
    """Requests, failures, bytes, latency histograms and the phases of one (method, name)."""

    __slots__ = ("method", "name", "requests", "failures", "bytes", "latency", "service", "phases")

    def __init__(self, method: str, name: str, with_service: bool = False) -> None:
        self.method = method
        self.name = name
        self.requests = 0
        self.failures = 0
        self.bytes = 0
        self.latency = Histogram()
        self.service: Histogram | None = Histogram() if with_service else None
        self.phases: Phases | None = None  # HTTP requests only (not measure())

    def merge(self, other: Entry) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.bytes += other.bytes
        self.latency.merge(other.latency)
        if other.service is not None:
            if self.service is None:
                self.service = Histogram()
            self.service.merge(other.service)
        if other.phases is not None:
            if self.phases is None:
                self.phases = Phases()
            self.phases.merge(other.phases)
