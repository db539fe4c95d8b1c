"""Log-linear latency histogram: fixed memory, <= 1% relative error, mergeable by adding counts.

Values are non-negative integers (microseconds). Values below ``2**SUB_BITS`` get one bucket each
(exact); above that every power of two is split into ``2**(SUB_BITS-1)`` equal buckets, so a bucket's
width is at most 1/64 of its lower bound and its midpoint is within 0.8% of any value inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SUB_BITS = 7
_LINEAR_LIMIT = 1 << SUB_BITS  # values below this are exact
_HALF = 1 << (SUB_BITS - 1)
MAX_VALUE = (1 << 40) - 1  # ~12.7 days in microseconds; larger values are clamped


def bucket_of(value: int) -> int:
    """Index of the bucket holding ``value``."""
    if value < _LINEAR_LIMIT:
        return value if value > 0 else 0
    if value > MAX_VALUE:
        value = MAX_VALUE
    shift = value.bit_length() - SUB_BITS
    return shift * _HALF + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Inclusive ``(low, high)`` values of a bucket."""
    if index < _LINEAR_LIMIT:
        return index, index
    shift, offset = divmod(index - _LINEAR_LIMIT, _HALF)
    shift += 1
    low = (_HALF + offset) << shift
    return low, low + (1 << shift) - 1


def bucket_value(index: int) -> int:
    """Representative value of a bucket (its midpoint)."""
    low, high = bucket_bounds(index)
    return (low + high) // 2


class Histogram:
    """Sparse bucket counts plus exact count, sum, min and max."""

    __slots__ = ("counts", "count", "total", "min", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def add(self, value: int) -> None:
        """Record one value (hot path)."""
        if value < _LINEAR_LIMIT:
            index = value if value > 0 else 0
        else:
            if value > MAX_VALUE:
                value = MAX_VALUE
            shift = value.bit_length() - SUB_BITS
            index = shift * _HALF + (value >> shift)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
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

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to this histogram."""
        if other.count == 0:
            return
        counts = self.counts
        if not counts:
            counts.update(other.counts)
        else:
            get = counts.get
            for index, n in other.counts.items():
                counts[index] = get(index, 0) + n
        if self.count == 0:
            self.min, self.max = other.min, other.max
        else:
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> int:
        """Value at quantile ``q`` in [0, 1] (nearest rank), clamped to the true min and max."""
        if self.count == 0:
            return 0
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Iterable[float]) -> list[int]:
        """Values at several quantiles in one pass over the sorted buckets."""
        if self.count == 0:
            return [0 for _ in qs]
        qs_list = list(qs)
        wanted = sorted((max(1, _rank(q, self.count)), i) for i, q in enumerate(qs_list))
        result = [0] * len(wanted)
        seen = 0
        pos = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            while pos < len(wanted) and wanted[pos][0] <= seen:
                value = bucket_value(index) if 0.0 < qs_list[wanted[pos][1]] < 1.0 else (
                    self.min if qs_list[wanted[pos][1]] <= 0.0 else self.max)
                result[wanted[pos][1]] = min(max(value, self.min), self.max)
                pos += 1
            if pos == len(wanted):
                break
        return result

    def to_dict(self) -> dict:
        """Plain data for msgpack: sparse counts as two parallel lists."""
        keys = list(self.counts)
        return {
            "b": keys,
            "c": [self.counts[k] for k in keys],
            "n": self.count,
            "s": self.total,
            "lo": self.min,
            "hi": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Histogram:
        hist = cls()
        hist.counts = dict(zip(data["b"], data["c"]))
        hist.count = data["n"]
        hist.total = data["s"]
        hist.min = data["lo"]
        hist.max = data["hi"]
        return hist

    def copy(self) -> Histogram:
        other = Histogram()
        other.merge(self)
        return other

    def __len__(self) -> int:
        return self.count


def _rank(q: float, count: int) -> int:
    """Nearest-rank position (1-based) of quantile ``q``."""
    if q <= 0:
        return 1
    if q >= 1:
        return count
    rank = q * count
    whole = int(rank)
    return whole if whole == rank else whole + 1
