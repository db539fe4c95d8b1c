"""Where a request's time went, per endpoint: DNS, connect, TLS, time to first byte, body (as k6's
``http_req_*``). Each phase is a sparse log-linear histogram (the same buckets as `Histogram`, so the
same <= 1% error) that holds only the buckets it uses, and exists only once a request paid the phase:
an endpoint served over kept-alive connections has TTFB and body, and no DNS, connect or TLS at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from loadgen.stats.histogram import BUCKET_TABLE, TABLE_SIZE, Counts, bucket_of, bucket_value, nearest_rank

PHASES = ("dns", "connect", "tls", "ttfb", "body")
"""The phases, in the order a request goes through them."""


class Tally:
    """A sparse histogram of microsecond values: bucket index -> count, plus count, sum and max."""

    __slots__ = ("counts", "count", "total", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.max = 0

    def add(self, value: int) -> None:
        counts = self.counts
        index = BUCKET_TABLE[value] if 0 <= value < TABLE_SIZE else bucket_of(value)
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value

    def merge(self, other: Any) -> None:
        """Add another tally, or any histogram with ``items()``."""
        counts = self.counts
        pairs = other.counts.items() if type(other) is Tally else other.items()
        for index, n in pairs:
            counts[index] = counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        if other.max > self.max:
            self.max = other.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def items(self) -> list[tuple[int, int]]:
        """Non-empty buckets as ``(index, count)``, in order (as `Histogram.items`)."""
        return sorted(self.counts.items())

    def percentiles(self, qs: Iterable[float]) -> list[int]:
        """Values at quantiles in [0, 1] (nearest rank), never above the true max."""
        qs = list(qs)
        if not self.count:
            return [0] * len(qs)
        ranks = sorted((nearest_rank(q, self.count), i) for i, q in enumerate(qs))
        out = [0] * len(qs)
        seen = 0
        pos = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            while pos < len(ranks) and ranks[pos][0] <= seen:
                out[ranks[pos][1]] = min(bucket_value(index), self.max)
                pos += 1
            if pos == len(ranks):
                break
        for _, i in ranks[pos:]:  # pragma: no cover - counts always add up to count
            out[i] = self.max
        return out


class Phases:
    """The phase tallies of one endpoint; a tally exists once a request paid that phase.

    A recorder's tallies are `Tally`s; a merging side passes its own kind (``tally=SpanHistogram``), and
    tallies it creates later are of the same kind as ``ttfb``'s.
    """

    __slots__ = PHASES

    def __init__(self, tally: Callable[[], Counts] = Tally) -> None:
        self.dns: Counts | None = None
        self.connect: Counts | None = None
        self.tls: Counts | None = None
        self.ttfb: Counts = tally()
        self.body: Counts = tally()

    def add_response(self, ttfb_us: int, body_us: int) -> None:
        """Every request with a response: time to first byte and body (the hot path, unrolled)."""
        tally: Tally = self.ttfb  # type: ignore[assignment]  # a recorder's phases hold Tallies
        counts = tally.counts
        index = BUCKET_TABLE[ttfb_us] if 0 <= ttfb_us < TABLE_SIZE else bucket_of(ttfb_us)
        counts[index] = counts.get(index, 0) + 1
        tally.count += 1
        tally.total += ttfb_us
        if ttfb_us > tally.max:
            tally.max = ttfb_us
        tally = self.body  # type: ignore[assignment]
        counts = tally.counts
        index = BUCKET_TABLE[body_us] if 0 <= body_us < TABLE_SIZE else bucket_of(body_us)
        counts[index] = counts.get(index, 0) + 1
        tally.count += 1
        tally.total += body_us
        if body_us > tally.max:
            tally.max = body_us

    def add_setup(self, dns_us: int, connect_us: int, tls_us: int) -> None:
        """A request that opened its connection: DNS (-1: no lookup was made), connect, TLS (-1: http)."""
        for name, value in (("dns", dns_us), ("connect", connect_us), ("tls", tls_us)):
            if value >= 0:
                self._tally(name).add(value)

    def _tally(self, name: str) -> Counts:
        tally: Counts | None = getattr(self, name)
        if tally is None:
            tally = type(self.ttfb)()
            setattr(self, name, tally)
        return tally

    def merge(self, other: Phases) -> None:
        self.ttfb.merge(other.ttfb)
        self.body.merge(other.body)
        for name in ("dns", "connect", "tls"):  # paid only by requests that opened a connection
            theirs = getattr(other, name)
            if theirs is not None and theirs.count:
                self._tally(name).merge(theirs)

    def items(self) -> list[tuple[str, Counts]]:
        """(phase, tally) for every phase some request paid, in request order."""
        out = []
        for name in PHASES:
            tally = getattr(self, name)
            if tally is not None and tally.count:
                out.append((name, tally))
        return out
