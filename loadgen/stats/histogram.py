"""Log-linear latency histogram: fixed memory, <= 1% relative error, mergeable by adding counts.

Values are non-negative integers (microseconds). Values below ``2**SUB_BITS`` get one bucket each
(exact); above that every power of two is split into ``2**(SUB_BITS-1)`` equal buckets, so a bucket's
width is at most 1/64 of its lower bound and its midpoint is within 0.8% of any value inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import add
from typing import Any, Protocol

SUB_BITS = 7
LINEAR_LIMIT = 1 << SUB_BITS  # values below this are exact
HALF = 1 << (SUB_BITS - 1)
MAX_VALUE = (1 << 40) - 1  # ~12.7 days in microseconds; larger values are clamped


def bucket_of(value: int) -> int:
    """Index of the bucket holding ``value``."""
    if value < LINEAR_LIMIT:
        return value if value > 0 else 0
    if value > MAX_VALUE:
        value = MAX_VALUE
    shift = value.bit_length() - SUB_BITS
    return shift * HALF + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Inclusive ``(low, high)`` values of a bucket."""
    if index < LINEAR_LIMIT:
        return index, index
    shift, offset = divmod(index - LINEAR_LIMIT, HALF)
    shift += 1
    low = (HALF + offset) << shift
    return low, low + (1 << shift) - 1


def bucket_value(index: int) -> int:
    """Representative value of a bucket (its midpoint)."""
    low, high = bucket_bounds(index)
    return (low + high) // 2


BUCKETS = bucket_of(MAX_VALUE) + 1


def _bucket_table(size: int) -> list[int]:
    """``bucket_of(v)`` for every ``0 <= v < size``, built run by run (a bucket is a run of values)."""
    indexes = list(range(BUCKETS))  # one int object per bucket, shared by the table's entries
    table: list[int] = []
    index = 0
    while len(table) < size:
        low, high = bucket_bounds(index)
        table.extend([indexes[index]] * (high - low + 1))
        index += 1
    del table[size:]
    return table


TABLE_SIZE = 1 << 16
BUCKET_TABLE = _bucket_table(TABLE_SIZE)
"""The bucket of every value below 65.5 ms, looked up instead of computed on the hot path (~0.5 MiB)."""


class Counts(Protocol):
    """What outputs read of any histogram (`Histogram`, `stats.spans.SpanHistogram`, a phase `Tally`)."""

    @property
    def count(self) -> int: ...

    @property
    def total(self) -> int: ...

    @property
    def max(self) -> int: ...

    @property
    def mean(self) -> float: ...

    def add(self, value: int) -> None: ...

    def merge(self, other: Any) -> None: ...

    def percentiles(self, qs: Iterable[float]) -> list[int]: ...

    def items(self) -> Iterable[tuple[int, int]]: ...


class Latencies(Counts, Protocol):
    """A latency histogram, which also keeps its true minimum (`Histogram`, `SpanHistogram`)."""

    @property
    def min(self) -> int: ...

    def percentile(self, q: float) -> int: ...


class Histogram:
    """Dense bucket counts (a fixed list) plus exact count, sum, min and max.

    A list beats a dict on the hot path: ``add`` is one index increment. The merging side (a master)
    uses `stats.spans.SpanHistogram` instead.
    """

    __slots__ = ("counts", "count", "total", "min", "max")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * BUCKETS
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def add(self, value: int) -> None:
        """Record one value (hot path)."""
        if 0 <= value < TABLE_SIZE:
            index = BUCKET_TABLE[value]
        elif value < 0:
            index = 0
        else:
            if value > MAX_VALUE:
                value = MAX_VALUE
            shift = value.bit_length() - SUB_BITS
            index = shift * HALF + (value >> shift)
        self.counts[index] += 1
        if self.count == 0:
            self.min = self.max = value
        elif value < self.min:
            self.min = value
        elif value > self.max:
            self.max = value
        self.count += 1
        self.total += value

    def add_many(self, values: Iterable[int]) -> None:
        for value in values:
            self.add(value)

    def merge(self, other: Any) -> None:
        """Add another histogram's counts: a `Histogram` (list against list), or any with ``items()``."""
        if other.count == 0:
            return
        if type(other) is Histogram:
            if self.count == 0:
                self.counts = other.counts[:]
            elif other.count <= 2:  # its samples are its min and max: an endpoint's second, at the caps
                mine = self.counts
                mine[bucket_of(other.min)] += 1
                if other.count == 2:
                    mine[bucket_of(other.max)] += 1
            else:  # only the buckets between its min and max
                low, high = bucket_of(max(other.min, 0)), bucket_of(max(other.max, 0)) + 1
                mine = self.counts
                mine[low:high] = map(add, mine[low:high], other.counts[low:high])
        else:
            mine = self.counts
            for index, n in other.items():
                mine[index] += n
        self._merge_summary(other.count, other.total, other.min, other.max)

    def _merge_summary(self, count: int, total: int, low: int, high: int) -> None:
        if self.count == 0:
            self.min, self.max = low, high
        else:
            if low < self.min:
                self.min = low
            if high > self.max:
                self.max = high
        self.count += count
        self.total += total

    def items(self) -> Iterator[tuple[int, int]]:
        """Non-empty buckets as ``(index, count)``, in order."""
        return ((index, n) for index, n in enumerate(self.counts) if n)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> int:
        """Value at quantile ``q`` in [0, 1] (nearest rank), clamped to the true min and max."""
        if self.count == 0:
            return 0
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Iterable[float]) -> list[int]:
        """Values at several quantiles in one pass over the buckets."""
        qs_list = list(qs)
        if self.count == 0:
            return [0 for _ in qs_list]
        wanted = sorted((max(1, nearest_rank(q, self.count)), i) for i, q in enumerate(qs_list))
        result = [0] * len(wanted)
        seen = 0
        pos = 0
        for index, n in enumerate(self.counts):
            if not n:
                continue
            seen += n
            while pos < len(wanted) and wanted[pos][0] <= seen:
                q = qs_list[wanted[pos][1]]
                if q <= 0.0:
                    value = self.min
                elif q >= 1.0:
                    value = self.max
                else:
                    value = min(max(bucket_value(index), self.min), self.max)
                result[wanted[pos][1]] = value
                pos += 1
            if pos == len(wanted):
                break
        return result

    def __len__(self) -> int:
        return self.count


def nearest_rank(q: float, count: int) -> int:
    """Nearest-rank position (1-based) of quantile ``q``."""
    if q <= 0:
        return 1
    if q >= 1:
        return count
    rank = q * count
    whole = int(rank)
    return whole if whole == rank else whole + 1
