"""The stats wire format, in one place: a ``StatsDelta`` as plain (msgpack-able) data, and back.

``decode_delta`` validates as it builds: anything that could raise later in the master's merge (or blow
memory up, such as a huge bucket index) is refused with a ``WireError``, so the frame can be dropped and
counted. Received histograms stay views into the frame's count bytes, merged once by a vectorised add.

Layout (short keys: every worker sends one a second)::

    delta   {"e": entries, "x": [[method, name, error, count]], "k": {counter: int}, "u": users,
             "d": dropped, "p": missed[, "it": iterations][, "xs": [[method, name, [message]]]]
             [, "ov": [[method, name]]], "cpu": float, "rss": float, "t": unix time, "T": histogram,
             "C": counts, "W": width[, "w": {process: row}]}
    entries {"n": [method, name, method, name, ...], "r": [requests], "f": [failures], "b": [bytes]
             [, "i": [interrupted]][, "h": [latency]][, "s": [service]][, "ph": [phases]]}
             (columns, an item per endpoint; "i" only when some request was interrupted)
             latency: a histogram, or nil (no sample, or held back for a later delta: stats.cadence);
             service: a histogram (open model), or nil; phases: nil, or [dns, connect, tls, ttfb, body],
             each a histogram or nil (not paid). A column of nils only is left out.
    histogram [first bucket, buckets, count, sum, min, max]   (a phase: [first bucket, buckets, count, sum, max])

``"C"`` holds the bucket counts of every histogram of the delta back to back, in the order they appear (each
entry's latency, service, then its phases; then "T"): *buckets* little-endian unsigned integers each, for buckets
*first* onwards, of ``"W"`` bytes (1, 2, 4 or 8: the narrowest that holds the largest count). One byte
string, not a list per histogram: msgpack copies it whole, and the receiver checks every histogram's sum in
one vectorised pass.

Encoding needs no numpy (workers never import it); decoding does (`stats.spans`).
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any

from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import MAX_MESSAGE_LENGTH, OTHER_SAMPLES, ErrorTable
from loadgen.stats.histogram import BUCKETS, Counts, Histogram, bucket_of
from loadgen.stats.phases import PHASES, Phases, Tally
from loadgen.stats.recorder import OVERFLOW_EXAMPLES, StatsDelta

if TYPE_CHECKING:
    import numpy.typing as npt

MAX_ROWS = 10_000
MAX_COUNTERS = 100
WIDEN_AT = 1 << 20  # counts of a delta widened to int64 for merging, at most
MAX_COUNT = 1 << 62  # a bucket's count or a histogram's total: far above any test, and safe in int64
_NUMBER = {int, float}
_INT = {int}
_STR = {str}
_PHASE_INDEX = {name: i for i, name in enumerate(PHASES)}
_BIG_ENDIAN = sys.byteorder == "big"
_WIDTHS = (("B", 1 << 8), ("H", 1 << 16), ("I", 1 << 32), ("Q", MAX_COUNT))  # array codes (1, 2, 4, 8 bytes)
_DTYPES = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}

Wire = dict[str, Any]


class WireError(ValueError):
    """Data that is not a valid encoded delta."""


# ---- encoding ------------------------------------------------------------------------------------------------
def span_of(hist: Any) -> tuple[int, Any]:
    """``(first bucket, counts of buckets first..last)`` of any histogram; counts a list or an array."""
    if hist.count == 0:
        return 0, []
    if type(hist) is Histogram:
        first = bucket_of(max(hist.min, 0))
        return first, hist.counts[first:bucket_of(max(hist.max, 0)) + 1]
    if type(hist) is Tally:
        keys = hist.counts
        first, last = min(keys), max(keys)
        dense = [0] * (last - first + 1)
        for index, n in keys.items():
            dense[index - first] = n
        return first, dense
    return hist.span()  # type: ignore[no-any-return]  # stats.spans.SpanHistogram


class _Spans:
    """The histograms of one delta as they are encoded: their maps, and their counts in order."""

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def add(self, hist: Counts, with_min: bool = True) -> list[int]:
        first, counts = span_of(hist)
        self.parts.append(counts)
        if with_min:
            return [first, len(counts), hist.count, hist.total, hist.min, hist.max]  # type: ignore[attr-defined]
        return [first, len(counts), hist.count, hist.total, hist.max]

    def blob(self) -> tuple[bytes, int]:
        """Every count back to back, little-endian, in the narrowest width that holds the largest (1 to 8
        bytes: a second's counts are mostly small)."""
        largest = max((max(part) if isinstance(part, list) else int(part.max()) for part in self.parts if len(part)),
                      default=0)
        code = next((code for code, limit in _WIDTHS if largest < limit), None)
        if code is None:
            raise WireError("stats: a bucket count past 2**62")
        out = array(code)
        for part in self.parts:
            if isinstance(part, list):
                out.fromlist(part)
            else:  # an int64 array (a hub's merged histograms)
                out.frombytes(part.astype("=" + code).tobytes())
        if _BIG_ENDIAN:
            out.byteswap()
        return out.tobytes(), out.itemsize


def encode_entries(entries: Iterable[Entry], spans: _Spans) -> Wire:
    """The entries as columns (see the layout above); their histograms' counts go to ``spans`` entry by entry:
    latency, service, phases."""
    names: list[str] = []
    requests, failures, sizes, interrupted = [], [], [], []
    latencies: list[list[int] | None] = []
    services: list[list[int] | None] = []
    phases: list[list[list[int] | None] | None] = []
    for entry in entries:
        names += (entry.method, entry.name)
        requests.append(entry.requests)
        failures.append(entry.failures)
        sizes.append(entry.bytes)
        interrupted.append(entry.interrupted)
        latencies.append(spans.add(entry.latency) if entry.latency.count else None)
        services.append(spans.add(entry.service) if entry.service is not None else None)
        tallies: list[list[int] | None] | None = None
        if entry.phases is not None:
            tallies = [None] * len(PHASES)
            for name, tally in entry.phases.items():
                tallies[_PHASE_INDEX[name]] = spans.add(tally, with_min=False)
        phases.append(tallies)
    data: Wire = {"n": names, "r": requests, "f": failures, "b": sizes}
    if any(interrupted):
        data["i"] = interrupted
    for key, column in (("h", latencies), ("s", services), ("ph", phases)):
        if any(item is not None for item in column):
            data[key] = column
    return data


def encode_delta(delta: StatsDelta) -> Wire:
    spans = _Spans()
    data: Wire = {
        "e": encode_entries(delta.entries.values(), spans),
        "x": [[m, n, e, c] for (m, n, e), c in delta.errors.counts.items()],
        "k": dict(delta.counters),
        "u": delta.users,
        "d": delta.dropped,
        "p": delta.missed,
        "cpu": delta.cpu_percent,
        "rss": delta.rss_mb,
        "t": delta.t,
    }
    if delta.iterations:
        data["it"] = delta.iterations
    if delta.errors.samples:  # examples of the messages counted as "other errors"
        data["xs"] = [[m, n, list(s)] for (m, n), s in delta.errors.samples.items()]
    if delta.overflowed:  # a few names counted in the other-endpoints row
        data["ov"] = [list(key) for key in delta.overflowed]
    if delta.total is not None:
        data["T"] = spans.add(delta.total)
    data["C"], data["W"] = spans.blob()
    if delta.processes:
        data["w"] = delta.processes
    return data


# ---- decoding ------------------------------------------------------------------------------------------------
def decode_delta(data: Any) -> StatsDelta:
    """Validate and rebuild a delta; ``WireError`` for anything malformed or hostile."""
    try:
        return _Decoder(data).delta()
    except WireError:
        raise
    except (KeyError, TypeError, IndexError, AttributeError, ValueError):
        raise WireError("stats: malformed delta") from None


def validate_delta(data: Any) -> None:
    """Raise ``WireError`` unless ``data`` is a well-formed encoded delta."""
    decode_delta(data)


def merge_wire(first: Wire, second: Wire) -> Wire:
    """Two encoded deltas of one process, back to back, as one (a worker's backlog after a long cut)."""
    merged = StatsDelta()
    for data in (first, second):
        part = decode_delta(data)
        merged.absorb(part)  # their totals too: the entries may not carry every latency (stats.cadence)
        merged.users, merged.cpu_percent, merged.rss_mb, merged.t = part.users, part.cpu_percent, part.rss_mb, part.t
    return encode_delta(merged.seal())


class _Decoder:
    """One delta's decoding: histograms become views into ``"C"``, their sums checked together at the end."""

    def __init__(self, data: Any) -> None:
        import numpy as np  # the merging side only: workers never decode

        from loadgen.stats.spans import SpanHistogram

        if type(data) is not dict:
            raise WireError("stats: not a map")
        self.data = data
        self._np = np
        self._view = SpanHistogram.view
        blob, width = data["C"], data["W"]
        if type(blob) is not bytes or type(width) is not int or width not in _DTYPES or len(blob) % width:
            raise WireError("stats: bad histogram counts")
        counts = np.frombuffer(blob, _DTYPES[width])
        if width == 8 and len(counts) and int(counts.max()) >= MAX_COUNT:
            raise WireError("stats: histogram count out of range")
        # int64 once: every merge is then a same-type add, twice as fast as one that widens; but never more than
        # WIDEN_AT counts (8 MB), so a large frame cannot make the master allocate eight times its size
        self.width = width
        self.counts: npt.NDArray[Any] = counts.view("<i8") if width == 8 else \
            counts.astype(np.int64) if len(counts) <= WIDEN_AT else counts
        self._empty = SpanHistogram.view(0, self.counts[:0], 0, 0, 0, 0)
        self.position = 0
        self.starts: list[int] = []  # where each non-empty histogram's counts begin
        self.sums: list[int] = []  # and what they must add up to
        self.headers: list[Any] = []

    def delta(self) -> StatsDelta:
        data = self.data
        entries, errors, counters = data["e"], data["x"], data["k"]
        if type(entries) is not dict or type(errors) is not list or type(counters) is not dict:
            raise WireError("stats: e/x/k of the wrong type")
        if len(errors) > MAX_ROWS or len(counters) > MAX_COUNTERS:
            raise WireError("stats: too many rows")
        delta = StatsDelta()
        delta.users, delta.dropped, delta.missed = _count(data["u"], "u"), _count(data["d"], "d"), _count(data["p"], "p")
        delta.iterations = _count(data.get("it", 0), "it")
        delta.cpu_percent, delta.rss_mb, delta.t = _number(data["cpu"], "cpu"), _number(data["rss"], "rss"), \
            _number(data["t"], "t")
        self._entries(entries, delta.entries)
        if "T" in data:
            delta.total = self._histogram(data["T"])
        self._check()
        table = ErrorTable()
        for row in errors:
            if (type(row) is not list or len(row) != 4 or type(row[0]) is not str or type(row[1]) is not str
                    or type(row[2]) is not str):
                raise WireError("stats: bad error row")
            table.add(row[0], row[1], row[2], _count(row[3], "error count"), normalised=True)
        for row in _short_list(data.get("xs", []), MAX_ROWS):
            if type(row) is not list or len(row) != 3 or type(row[2]) is not list:
                raise WireError("stats: bad error samples")
            for message in _short_list(row[2], OTHER_SAMPLES):
                table.sample((_text(row[0]), _text(row[1])), _text(message, 4 * MAX_MESSAGE_LENGTH))
        delta.errors = table
        delta.overflowed = [(_text(m, 100), _text(n, 200)) for m, n in _short_list(data.get("ov", []), OVERFLOW_EXAMPLES)]
        for key, value in counters.items():
            if type(key) is not str:
                raise WireError("stats: bad counter name")
            _count(value, key, signed=True)
        delta.counters = dict(counters)
        if "w" in data:
            delta.processes = _processes(data["w"])
        return delta

    def _entries(self, columns: dict[str, Any], into: dict[tuple[str, str], Entry]) -> None:
        names, requests, failures, sizes = columns["n"], columns["r"], columns["f"], columns["b"]
        count = len(requests)
        if (type(names) is not list or type(requests) is not list or type(failures) is not list
                or type(sizes) is not list or count > MAX_ROWS or len(names) != 2 * count
                or len(failures) != count or len(sizes) != count):
            raise WireError("stats: bad entries")
        if count and (not set(map(type, names)) <= _STR
                      or not set(map(type, requests)) | set(map(type, failures)) | set(map(type, sizes)) <= _INT
                      or min(min(requests), min(failures), min(sizes)) < 0):
            raise WireError("stats: bad entries")
        empty = [None] * count
        latencies, services, phases = (columns.get(key, empty) for key in ("h", "s", "ph"))
        cut = columns.get("i", None) or [0] * count
        if any(type(column) is not list or len(column) != count for column in (latencies, services, phases, cut)):
            raise WireError("stats: bad entries")
        if count and (not set(map(type, cut)) <= _INT or min(cut) < 0):
            raise WireError("stats: bad entries")
        histogram, tallies = self._histogram, self._phases
        for method, name, n, failed, size, interrupted, latency, service, phase in zip(
                names[::2], names[1::2], requests, failures, sizes, cut, latencies, services, phases):
            entry = Entry.__new__(Entry)
            entry.method, entry.name, entry.requests, entry.failures, entry.bytes = method, name, n, failed, size
            entry.interrupted = interrupted
            entry.latency = self._empty if latency is None else histogram(latency)
            entry.service = None if service is None else histogram(service)
            entry.phases = None if phase is None else tallies(phase)
            into[(method, name)] = entry

    def _histogram(self, raw: Any, with_min: bool = True) -> Any:
        """A view of the histogram's counts, its header's ranges checked (its types: with all the others, in
        `_check`)."""
        if type(raw) is not list:
            raise WireError("stats: bad histogram")
        if with_min:
            first, size, count, total, low, high = raw
        else:
            first, size, count, total, high = raw
            low = 0
        if (first < 0 or size < 0 or first + size > BUCKETS or count < 0 or count >= MAX_COUNT or total < 0
                or low < 0 or low > high or (not size and count)):
            raise WireError("stats: histogram out of range")
        self.headers.append(raw)
        at = self.position
        end = self.position = at + size
        if size:
            self.starts.append(at)
            self.sums.append(count)
        return self._view(first, self.counts[at:end], count, total, low, high)

    def _phases(self, raw: Any) -> Phases:
        if type(raw) is not list or len(raw) != len(PHASES):
            raise WireError("stats: bad phases")
        dns, connect, tls, ttfb, body = (None if tally is None else self._histogram(tally, with_min=False)
                                         for tally in raw)
        phases = Phases.__new__(Phases)
        phases.dns, phases.connect, phases.tls = dns, connect, tls
        phases.ttfb = self._empty if ttfb is None else ttfb  # always there; empty when a request paid neither
        phases.body = self._empty if body is None else body
        return phases

    def _check(self) -> None:
        """Every header made of ints (not bools, not floats), ``"C"`` holding exactly the histograms' counts,
        and each histogram's counts adding up to its count (one vectorised sum over the delta)."""
        if not set(map(type, chain.from_iterable(self.headers))) <= _INT:
            raise WireError("stats: bad histogram")
        if self.position != len(self.counts):
            raise WireError("stats: histogram counts do not match their sizes")
        # narrow counts sum in int64 (a histogram's buckets, each below 2**32, cannot overflow it); 8-byte ones,
        # each below 2**62, in Python ints: int64 could wrap round to a plausible sum
        total = object if self.width == 8 else self._np.int64
        if self.starts and self._np.add.reduceat(self.counts, self.starts, dtype=total).tolist() != self.sums:
            raise WireError("stats: inconsistent histogram")


def _processes(rows: Any) -> dict[str, list[float]]:
    """A machine's per-process rows: ``{id: [requests, failures, users, cpu, rss, lost]}``, at most 1024."""
    if type(rows) is not dict or len(rows) > 1024:
        raise WireError("stats: bad process rows")
    for key, row in rows.items():
        if type(key) is not str or len(key) > 255 or type(row) is not list or len(row) != 6:
            raise WireError("stats: bad process row")
        requests, failures, users, cpu, rss, lost = row
        if (type(requests) is not int or type(failures) is not int or type(users) is not int or type(lost) is not int
                or type(cpu) not in _NUMBER or type(rss) not in _NUMBER or min(row) < 0
                or not math.isfinite(cpu) or not math.isfinite(rss)):
            raise WireError("stats: bad process row")
    return rows


def _short_list(value: Any, most: int) -> list[Any]:
    if type(value) is not list or len(value) > most:
        raise WireError("stats: bad list")
    return value


def _text(value: Any, most: int | None = None) -> str:
    """A string; cut to ``most`` characters (an example is only an example: never a reason to drop a delta)."""
    if type(value) is not str:
        raise WireError("stats: bad text")
    return value if most is None else value[:most]


def _count(value: Any, what: str, signed: bool = False) -> int:
    if type(value) is not int or (value < 0 and not signed):
        raise WireError(f"stats: {what} is not a count")
    return int(value)


def _number(value: Any, what: str) -> float:
    if type(value) not in _NUMBER or not math.isfinite(value):
        raise WireError(f"stats: {what} is not a number")
    return float(value)
