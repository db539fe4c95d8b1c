"""The stats wire format, in one place: a ``StatsDelta`` as plain (msgpack-able) data, and back.

``decode_delta`` validates before it builds: anything that could raise later in the master's merge (or blow
memory up, such as a huge bucket index) is refused here with a ``WireError``, so the frame can be dropped
and counted. Received histograms stay in their sparse wire form, cheap to merge once.

Layout (short keys: every worker sends one a second)::

    delta   {"e": [entry], "x": [[method, name, error, count]], "k": {counter: int}, "u": users,
             "d": dropped, "p": missed, "cpu": float, "rss": float, "t": unix time, "T": histogram}
    entry   {"m": method, "n": name, "r": requests, "f": failures, "b": bytes, "h": histogram[, "s": histogram]
             [, "ph": {phase: tally}]}
    histogram {"b": [bucket index], "c": [count], "n": count, "s": sum, "lo": min, "hi": max}
    tally   {"b": [bucket index], "c": [count], "n": count, "s": sum, "hi": max}   (stats.phases)
"""

from __future__ import annotations

import math
from typing import Any

from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import ErrorTable
from loadgen.stats.histogram import BUCKETS, Histogram, SparseHistogram
from loadgen.stats.phases import PHASES, Phases
from loadgen.stats.recorder import StatsDelta

MAX_BUCKET = BUCKETS - 1
MAX_ROWS = 10_000
MAX_COUNTERS = 100
_INT = {int}
_NUMBER = {int, float}
_PHASE_NAMES = frozenset(PHASES)

Wire = dict[str, Any]


class WireError(ValueError):
    """Data that is not a valid encoded delta."""


# ---- encoding ------------------------------------------------------------------------------------------------
def encode_histogram(hist: Histogram | SparseHistogram) -> Wire:
    """The non-empty buckets as two parallel lists, plus count, sum, min and max."""
    if isinstance(hist, SparseHistogram):
        return {"b": hist.buckets, "c": hist.bucket_counts, "n": hist.count, "s": hist.total, "lo": hist.min,
                "hi": hist.max}
    counts = hist.counts
    keys = [index for index, n in enumerate(counts) if n]
    return {"b": keys, "c": [counts[k] for k in keys], "n": hist.count, "s": hist.total, "lo": hist.min,
            "hi": hist.max}


def encode_entry(entry: Entry) -> Wire:
    data: Wire = {"m": entry.method, "n": entry.name, "r": entry.requests, "f": entry.failures, "b": entry.bytes,
                  "h": encode_histogram(entry.latency)}
    if entry.service is not None:
        data["s"] = encode_histogram(entry.service)
    if entry.phases is not None:
        data["ph"] = entry.phases.encode()
    return data


def encode_delta(delta: StatsDelta) -> Wire:
    data: Wire = {
        "e": [encode_entry(entry) for entry in delta.entries.values()],
        "x": [[m, n, e, c] for (m, n, e), c in delta.errors.counts.items()],
        "k": dict(delta.counters),
        "u": delta.users,
        "d": delta.dropped,
        "p": delta.missed,
        "cpu": delta.cpu_percent,
        "rss": delta.rss_mb,
        "t": delta.t,
    }
    if delta.total is not None:
        data["T"] = encode_histogram(delta.total)
    if delta.processes:
        data["w"] = delta.processes
    return data


# ---- decoding ------------------------------------------------------------------------------------------------
def decode_histogram(data: Any) -> Histogram:
    """A dense histogram of our own from its wire form (validated)."""
    validate_histogram(data)
    hist = Histogram()
    hist.merge_sparse(data["b"], data["c"], data["n"], data["s"], data["lo"], data["hi"])
    return hist


def decode_delta(data: Any) -> StatsDelta:
    """Validate and rebuild a delta; ``WireError`` for anything malformed or hostile."""
    validate_delta(data)
    delta = StatsDelta()
    for raw in data["e"]:
        entry = Entry.__new__(Entry)
        entry.method, entry.name = raw["m"], raw["n"]
        entry.requests, entry.failures, entry.bytes = raw["r"], raw["f"], raw["b"]
        entry.latency = SparseHistogram(raw["h"])  # type: ignore[assignment]  # merged once, never added to
        entry.service = SparseHistogram(raw["s"]) if "s" in raw else None  # type: ignore[assignment]
        entry.phases = Phases.decode(raw["ph"]) if "ph" in raw else None
        delta.entries[(entry.method, entry.name)] = entry
    errors = ErrorTable()
    for method, name, message, count in data["x"]:
        errors.add(method, name, message, count, normalised=True)
    delta.errors = errors
    delta.counters = dict(data["k"])
    delta.users, delta.dropped, delta.missed = data["u"], data["d"], data["p"]
    delta.cpu_percent, delta.rss_mb, delta.t = data["cpu"], data["rss"], data["t"]
    if "T" in data:
        delta.total = SparseHistogram(data["T"])
    if "w" in data:
        delta.processes = {key: list(row) for key, row in data["w"].items()}
    return delta


def merge_wire(first: Wire, second: Wire) -> Wire:
    """Two encoded deltas of one process, back to back, as one (a worker's backlog after a long cut)."""
    merged = StatsDelta()
    for data in (first, second):
        part = decode_delta(data)
        merged.absorb(part)
        merged.users, merged.cpu_percent, merged.rss_mb, merged.t = part.users, part.cpu_percent, part.rss_mb, part.t
    return encode_delta(merged.seal())


def validate_delta(delta: Any) -> None:
    """Raise ``WireError`` unless ``delta`` is a well-formed encoded delta (C-speed checks: this runs for every
    endpoint of every worker every second)."""
    try:
        if type(delta) is not dict:
            raise WireError("stats: not a map")
        entries, errors, counters = delta["e"], delta["x"], delta["k"]
        if type(entries) is not list or type(errors) is not list or type(counters) is not dict:
            raise WireError("stats: e/x/k of the wrong type")
        if len(entries) > MAX_ROWS or len(errors) > MAX_ROWS or len(counters) > MAX_COUNTERS:
            raise WireError("stats: too many rows")
        for key in ("u", "d", "p"):
            _count(delta[key], key)
        for key in ("cpu", "rss", "t"):
            value = delta[key]
            if type(value) not in _NUMBER or not math.isfinite(value):
                raise WireError(f"stats: {key} is not a number")
        for entry in entries:
            if type(entry) is not dict or type(entry["m"]) is not str or type(entry["n"]) is not str:
                raise WireError("stats: bad entry")
            for key in ("r", "f", "b"):
                _count(entry[key], key)
            validate_histogram(entry["h"])
            if "s" in entry:
                validate_histogram(entry["s"])
            if "ph" in entry:
                validate_phases(entry["ph"])
        if "T" in delta:
            validate_histogram(delta["T"])
        if "w" in delta:
            validate_processes(delta["w"])
        for row in errors:
            if (type(row) is not list or len(row) != 4 or type(row[0]) is not str or type(row[1]) is not str
                    or type(row[2]) is not str):
                raise WireError("stats: bad error row")
            _count(row[3], "error count")
        for key, value in counters.items():
            if type(key) is not str:
                raise WireError("stats: bad counter name")
            _count(value, key, signed=True)
    except (KeyError, TypeError, IndexError):
        raise WireError("stats: malformed delta") from None


def validate_processes(rows: Any) -> None:
    """A machine's per-process rows: ``{id: [requests, failures, users, cpu, rss, lost]}``, at most 1024."""
    if type(rows) is not dict or len(rows) > 1024:
        raise WireError("stats: bad process rows")
    for key, row in rows.items():
        if type(key) is not str or len(key) > 255 or type(row) is not list or len(row) != 6:
            raise WireError("stats: bad process row")
        for value in (row[0], row[1], row[2], row[5]):
            _count(value, "process count")
        for value in row[3:5]:
            if type(value) not in _NUMBER or not math.isfinite(value) or value < 0:
                raise WireError("stats: bad process figure")


def validate_histogram(hist: Any) -> None:
    try:
        if type(hist) is not dict:
            raise WireError("stats: bad histogram")
        buckets, counts = hist["b"], hist["c"]
        if type(buckets) is not list or type(counts) is not list or len(buckets) != len(counts):
            raise WireError("stats: bad histogram buckets")
        for key in ("n", "s", "lo", "hi"):
            _count(hist[key], "histogram " + key)
        if buckets:
            # bucket indexes feed list indexing in the merge: integers in range, strictly; counts only need to
            # add up (a float count is harmless)
            if not set(map(type, buckets)) <= _INT or min(buckets) < 0 or max(buckets) > MAX_BUCKET:
                raise WireError("stats: histogram bucket out of range")
            if min(counts) < 0:
                raise WireError("stats: negative histogram count")
        if sum(counts) != hist["n"] or hist["lo"] > hist["hi"]:
            raise WireError("stats: inconsistent histogram")
    except (KeyError, TypeError):
        raise WireError("stats: malformed histogram") from None


def validate_phases(phases: Any) -> None:
    """An entry's phase tallies: known phase names, each a consistent tally."""
    if type(phases) is not dict or not set(phases) <= _PHASE_NAMES:
        raise WireError("stats: bad phases")
    for tally in phases.values():
        try:
            if type(tally) is not dict:
                raise WireError("stats: bad phase tally")
            buckets, counts = tally["b"], tally["c"]
            if type(buckets) is not list or type(counts) is not list or len(buckets) != len(counts):
                raise WireError("stats: bad phase buckets")
            for key in ("n", "s", "hi"):
                _count(tally[key], "phase " + key)
            if buckets and (not set(map(type, buckets)) <= _INT or not set(map(type, counts)) <= _INT
                            or min(buckets) < 0 or max(buckets) > MAX_BUCKET or min(counts) < 0):
                raise WireError("stats: phase bucket out of range")
            if sum(counts) != tally["n"]:
                raise WireError("stats: inconsistent phase tally")
        except (KeyError, TypeError):
            raise WireError("stats: malformed phase tally") from None


def _count(value: Any, what: str, signed: bool = False) -> None:
    if type(value) is not int or (value < 0 and not signed):
        raise WireError(f"stats: {what} is not a count")
