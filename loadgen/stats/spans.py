"""The histogram of the side that merges (an aggregate, a machine's hub): numpy counts over the span of buckets
seen so far, so merging one received histogram is one vectorised add of its span.

The recording side keeps `Histogram` (a plain list: one index increment per request, and no numpy in a
worker). A master merges a thousand hosts' deltas a second, each with dozens of histograms; a Python loop
per bucket cannot keep up with that, a slice add can. Same buckets, same <= 1% error, exact counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from loadgen.stats.histogram import BUCKETS, Histogram, bucket_of, bucket_value, nearest_rank

Counts = npt.NDArray[np.int64]
GROW_MARGIN = 32  # extra buckets on each side when the span grows, so a drifting latency grows it rarely
_EMPTY: Counts = np.zeros(0, np.int64)
_add = np.add


class SpanHistogram:
    """Counts of buckets ``offset .. offset + len(counts) - 1`` (int64), plus exact count, sum, min and max.

    A received histogram is a read-only view into its frame (`view`); merging it into a cumulative one adds
    its span in place. Cumulative ones grow their span as values fall outside it.
    """

    __slots__ = ("offset", "counts", "count", "total", "min", "max")

    def __init__(self) -> None:
        self.offset = 0
        self.counts: npt.NDArray[Any] = _EMPTY
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    @classmethod
    def view(cls, offset: int, counts: npt.NDArray[Any], count: int, total: int, low: int,
             high: int) -> SpanHistogram:
        """A received histogram over ``counts`` (not copied; never merged into)."""
        hist = cls.__new__(cls)
        hist.offset, hist.counts = offset, counts
        hist.count, hist.total, hist.min, hist.max = count, total, low, high
        return hist

    # ---- input -------------------------------------------------------------------------------------------
    def add(self, value: int) -> None:
        """Record one value (not a hot path: recorders use `Histogram`)."""
        single = SpanHistogram.view(bucket_of(max(value, 0)), np.ones(1, np.int64), 1, value, value, value)
        self.merge(single)

    def merge(self, other: Any) -> None:
        """Add another histogram: a `SpanHistogram` (the fast path: a master merges thousands a second), a
        `Histogram` or a phase `Tally`."""
        if type(other) is not SpanHistogram:
            self._merge_recorded(other)
            return
        count = other.count
        if not count:
            return
        counts = other.counts
        size = len(counts)
        start = other.offset - self.offset
        if start < 0 or start + size > len(self.counts):
            self._cover(other.offset, other.offset + size)
            start = other.offset - self.offset
        into = self.counts[start:start + size]
        _add(into, counts, out=into)  # not `a[i:j] += b`: that also writes the slice back
        if self.count:
            if other.min < self.min:
                self.min = other.min
            if other.max > self.max:
                self.max = other.max
        else:
            self.min, self.max = other.min, other.max
        self.count += count
        self.total += other.total

    def _merge_recorded(self, other: Any) -> None:
        """A recorder's `Histogram` (a list of every bucket) or `Tally` (a dict of the buckets it uses)."""
        if other.count == 0:
            return
        if type(other) is Histogram:
            first = bucket_of(max(other.min, 0))
            counts = np.array(other.counts[first:bucket_of(max(other.max, 0)) + 1], np.int64)
            low = other.min
        else:  # a phase tally keeps no minimum
            first, counts = _dense(other.items())
            low = 0
        self.merge(SpanHistogram.view(first, counts, other.count, other.total, low, other.max))

    def _cover(self, first: int, end: int) -> None:
        """Grow the span to hold buckets ``first .. end - 1`` (with a margin), keeping the counts."""
        if len(self.counts):
            first, end = min(first, self.offset), max(end, self.offset + len(self.counts))
        first, end = max(0, first - GROW_MARGIN), min(BUCKETS, end + GROW_MARGIN)
        grown = np.zeros(end - first, np.int64)
        if len(self.counts):
            at = self.offset - first
            grown[at:at + len(self.counts)] = self.counts
        self.offset, self.counts = first, grown

    # ---- output ------------------------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def span(self) -> tuple[int, npt.NDArray[Any]]:
        """``(first bucket, counts)`` from the first non-empty bucket to the last (empty when nothing)."""
        nonzero = np.flatnonzero(self.counts)
        if not len(nonzero):
            return 0, _EMPTY
        first, last = int(nonzero[0]), int(nonzero[-1])
        return self.offset + first, self.counts[first:last + 1]

    def items(self) -> Iterator[tuple[int, int]]:
        """Non-empty buckets as ``(index, count)``, in order."""
        nonzero = np.flatnonzero(self.counts)
        return zip((nonzero + self.offset).tolist(), self.counts[nonzero].tolist())

    def percentile(self, q: float) -> int:
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Iterable[float]) -> list[int]:
        """Values at quantiles in [0, 1] (nearest rank), clamped to the true min and max."""
        qs = list(qs)
        if self.count == 0:
            return [0] * len(qs)
        running = np.cumsum(self.counts)
        ranks = [max(1, nearest_rank(q, self.count)) for q in qs]
        positions = np.searchsorted(running, ranks).tolist()
        out = []
        last = len(self.counts) - 1
        for q, position in zip(qs, positions):
            if q <= 0.0:
                out.append(self.min)
            elif q >= 1.0 or position > last:
                out.append(self.max)
            else:
                out.append(min(max(bucket_value(self.offset + position), self.min), self.max))
        return out

    def __len__(self) -> int:
        return self.count


def _dense(items: Iterable[tuple[int, int]]) -> tuple[int, Counts]:
    """Sparse ``(bucket, count)`` pairs as ``(first bucket, dense counts)``."""
    pairs = sorted(items)
    if not pairs:
        return 0, _EMPTY
    first = pairs[0][0]
    counts = np.zeros(pairs[-1][0] - first + 1, np.int64)
    for index, n in pairs:
        counts[index - first] += n
    return first, counts
