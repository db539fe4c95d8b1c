"""Statistics of one endpoint, keyed by (method, name)."""

from __future__ import annotations

from collections.abc import Mapping

from loadgen.stats.histogram import Histogram, SparseHistogram


class Entry:
    """Requests, failures, bytes and latency histograms of one (method, name)."""

    __slots__ = ("method", "name", "requests", "failures", "bytes", "latency", "service")

    def __init__(self, method: str, name: str, with_service: bool = False) -> None:
        self.method = method
        self.name = name
        self.requests = 0
        self.failures = 0
        self.bytes = 0
        self.latency = Histogram()
        self.service: Histogram | None = Histogram() if with_service else None

    def merge(self, other: Entry) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.bytes += other.bytes
        self.latency.merge(other.latency)
        if other.service is not None:
            if self.service is None:
                self.service = Histogram()
            self.service.merge(other.service)

    def dense_copy(self) -> Entry:
        """An entry of our own (dense histograms) with this one's numbers."""
        entry = Entry(self.method, self.name, with_service=self.service is not None)
        entry.merge(self)
        return entry

    def to_dict(self) -> dict:
        data = {
            "m": self.method,
            "n": self.name,
            "r": self.requests,
            "f": self.failures,
            "b": self.bytes,
            "h": self.latency.to_dict(),
        }
        if self.service is not None:
            data["s"] = self.service.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping, sparse: bool = False) -> Entry:
        """Rebuild an entry; ``sparse`` keeps received histograms in wire form, cheap to merge once."""
        make = SparseHistogram if sparse else Histogram.from_dict
        entry = cls.__new__(cls)
        entry.method = data["m"]
        entry.name = data["n"]
        entry.requests = data["r"]
        entry.failures = data["f"]
        entry.bytes = data["b"]
        entry.latency = make(data["h"])
        entry.service = make(data["s"]) if "s" in data else None
        return entry
