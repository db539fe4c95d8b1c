"""The stats wire format: histogram counts as one byte string per delta, checked and merged by numpy."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.stats.endpoint import Entry
from loadgen.stats.histogram import BUCKETS, Histogram
from loadgen.stats.recorder import Recorder, StatsDelta
from loadgen.stats.spans import SpanHistogram
from loadgen.stats.wire import WireError, decode_delta, encode_delta, merge_wire

QUANTILES = (0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0)


def recorded(seed: int = 1, requests: int = 2000) -> StatsDelta:
    rng = random.Random(seed)
    rec = Recorder(open_model=True)
    for i in range(requests):
        latency = int(rng.lognormvariate(9, 1.2))
        setup = (rng.randint(0, 900), 300, 2000) if i % 50 == 0 else None
        rec.record("GET", f"/{i % 7}", latency, 100, queued_us=rng.randint(0, 50), ttfb_us=latency // 2,
                   body_us=latency // 3, setup=setup, error="HTTP 503" if i % 97 == 0 else None)
    return rec.flush()


def roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    return msgpack.unpackb(msgpack.packb(data, use_bin_type=True), raw=False, strict_map_key=False)


def test_a_delta_survives_the_wire_exactly() -> None:
    delta = recorded()
    wire = encode_delta(delta)
    assert isinstance(wire["C"], bytes) and wire["W"] == 1  # a second's counts fit a byte each
    back = decode_delta(roundtrip(wire))
    assert back.requests == delta.requests and back.failures == delta.failures
    for key, entry in delta.entries.items():
        got = back.entries[key]
        for mine, theirs in ((entry.latency, got.latency), (entry.service, got.service)):
            assert mine is not None and theirs is not None
            assert dict(theirs.items()) == dict(mine.items())
            assert (theirs.count, theirs.total, theirs.min, theirs.max) == (mine.count, mine.total, mine.min,
                                                                              mine.max)
            assert theirs.percentiles(QUANTILES) == mine.percentiles(QUANTILES)
        assert entry.phases is not None and got.phases is not None
        assert [(n, dict(t.items()), t.count, t.max) for n, t in got.phases.items()] == \
            [(n, dict(t.items()), t.count, t.max) for n, t in entry.phases.items()]
    assert back.total is not None and delta.total is not None
    assert dict(back.total.items()) == dict(delta.total.items())


def test_interrupted_counts_travel_only_when_there_are_some() -> None:
    delta = recorded()
    assert "i" not in encode_delta(delta)["e"]
    rec = Recorder()
    rec.record("GET", "/", 1000, 10)
    rec.record_interrupted("sqs", "receive")
    rec.record_interrupted("sqs", "receive")
    back = decode_delta(roundtrip(encode_delta(rec.flush())))
    assert back.entries[("sqs", "receive")].interrupted == 2 and back.entries[("sqs", "receive")].requests == 0
    assert back.entries[("GET", "/")].interrupted == 0 and back.interrupted == 2 and back.requests == 1


def test_the_encoded_form_is_compact() -> None:
    """One byte string of counts beats a msgpack list of ints per histogram, per bucket."""
    wire = encode_delta(recorded(requests=20_000))
    assert wire["W"] == 1  # a byte a bucket, where msgpack takes 1 to 3 per int
    assert len(msgpack.packb(wire, use_bin_type=True)) < len(wire["C"]) + 3000  # the rest: names and sums


@pytest.mark.parametrize(("count", "width"), [(255, 1), (256, 2), (70_000, 4)])
def test_the_width_is_the_narrowest_that_holds_the_largest_count(count: int, width: int) -> None:
    hist = Histogram()
    for _ in range(count):
        hist.add(777)
    delta = StatsDelta()
    delta.entries[("GET", "/")] = entry = Entry("GET", "/")
    entry.latency, entry.requests = hist, count
    wire = encode_delta(delta)  # no total: one histogram
    assert wire["W"] == width and len(wire["C"]) == width
    assert decode_delta(roundtrip(wire)).entries[("GET", "/")].latency.count == count


def test_counts_past_32_bits_travel_wide() -> None:
    hist = Histogram()
    hist.add(5000)
    hist.counts[hist.counts.index(1)] = 5 * 2**32  # as a long backlog merged on one machine could hold
    hist.count = 5 * 2**32
    delta = StatsDelta()
    delta.entries[("GET", "/")] = entry = Entry("GET", "/")
    entry.latency, entry.requests = hist, hist.count
    wire = encode_delta(delta.seal())
    assert wire["W"] == 8
    back = decode_delta(roundtrip(wire))
    assert back.entries[("GET", "/")].latency.count == 5 * 2**32
    total = SpanHistogram()
    total.merge(back.entries[("GET", "/")].latency)
    total.merge(back.entries[("GET", "/")].latency)
    assert total.count == 10 * 2**32 and dict(total.items()) == {list(hist.items())[0][0]: 10 * 2**32}
    again = decode_delta(roundtrip(encode_delta(_delta_of(total))))  # a hub's merged (int64) histogram, wide
    assert again.entries[("GET", "/")].latency.count == 10 * 2**32


def _delta_of(hist: SpanHistogram) -> StatsDelta:
    delta = StatsDelta()
    delta.entries[("GET", "/")] = entry = Entry("GET", "/", histogram=SpanHistogram)
    entry.latency, entry.requests = hist, hist.count
    return delta.seal()


def _corrupt(change: str) -> dict[str, Any]:
    wire = roundtrip(encode_delta(recorded()))
    h = wire["e"]["h"][0]
    if change == "sum":
        h[2] += 1
    elif change == "leftover":
        wire["C"] += b"\x01\x00\x00\x00"
    elif change == "short":
        wire["C"] = wire["C"][:-4]
    elif change == "ragged":
        wire["C"] += b"\x01"
    elif change == "range":
        h[0] = BUCKETS - h[1] + 1
    elif change == "negative":
        h[0] = -1
    elif change == "width":
        wire["W"] = 3
    elif change == "huge":
        wire["W"] = 8
        wire["C"] = b"\xff" * 8 * (len(wire["C"]) // 8)
    elif change == "list":
        wire["C"] = list(wire["C"])
    elif change == "float":
        h[1] = float(h[1])
    elif change == "bool":
        h[2] = True
    elif change == "long":
        h.append(0)
    elif change == "map":
        wire["e"]["h"][0] = dict(enumerate(h))
    elif change == "empty-but-counted":
        h[1] = 0
    elif change == "min-above-max":
        h[4] = h[5] + 1
    elif change == "phase":
        wire["e"]["ph"][0].append(None)  # a sixth phase
    elif change == "ragged-column":
        wire["e"]["r"].append(1)
    elif change == "name":
        wire["e"]["n"][0] = 7
    elif change == "negative-count":
        wire["e"]["f"][0] = -1
    elif change == "no-counts":
        del wire["C"]
    elif change == "bytes":
        wire["e"]["h"][0] = bytes(h) if max(h) < 256 else b"\x00" * 6
    elif change == "phase-bool":
        next(p for p in wire["e"]["ph"][0] if p is not None)[1] = True
    elif change == "last-float":
        wire["T"][3] = float(wire["T"][3])  # the last header checked
    elif change == "negative-total":
        h[3] = -1
    elif change == "interrupted-negative":
        wire["e"]["i"] = [-1] + [0] * (len(wire["e"]["r"]) - 1)
    elif change == "interrupted-short":
        wire["e"]["i"] = [1]
    elif change == "interrupted-float":
        wire["e"]["i"] = [0.5] * len(wire["e"]["r"])
    return wire


@pytest.mark.parametrize("change", ["sum", "leftover", "short", "ragged", "range", "negative", "width", "huge",
                                    "list", "float", "bool", "long", "map", "empty-but-counted", "min-above-max", "phase", "ragged-column", "name",
                                    "negative-count", "no-counts", "bytes", "phase-bool", "last-float",
                                    "negative-total", "interrupted-negative", "interrupted-short",
                                    "interrupted-float"])
def test_hostile_counts_are_refused(change: str) -> None:
    with pytest.raises(WireError):
        decode_delta(_corrupt(change))


def test_an_empty_delta_and_merged_backlogs() -> None:
    empty = encode_delta(Recorder().flush())
    assert empty["C"] == b"" and decode_delta(roundtrip(empty)).requests == 0
    one, two = encode_delta(recorded(1)), encode_delta(recorded(2))
    merged = decode_delta(roundtrip(merge_wire(one, two)))
    a, b = decode_delta(one), decode_delta(two)
    assert merged.requests == a.requests + b.requests
    for key, entry in merged.entries.items():
        union = SpanHistogram()
        union.merge(a.entries[key].latency)
        union.merge(b.entries[key].latency)
        assert dict(entry.latency.items()) == dict(union.items())
        assert entry.phases is not None and entry.phases.ttfb.count == entry.requests


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.one_of(st.integers(0, 300), st.integers(0, 10**7), st.integers(0, 10**12)),
                         min_size=0, max_size=300), min_size=1, max_size=6))
def test_span_histogram_merges_like_the_list(parts: list[list[int]]) -> None:
    """Growing spans in any order (low, high, disjoint, nested) give the list histogram's counts exactly."""
    span, union = SpanHistogram(), Histogram()
    for part in parts:
        hist = Histogram()
        hist.add_many(part)
        span.merge(hist)
        union.merge(hist)
    assert dict(span.items()) == dict(union.items())
    assert (span.count, span.total, span.min, span.max) == (union.count, union.total, union.min, union.max)
    assert span.percentiles(QUANTILES) == union.percentiles(QUANTILES)


def test_a_worker_never_imports_numpy() -> None:
    """Encoding is plain Python: numpy costs ~18 MB a process, and only the merging side needs it."""
    code = ("import sys, loadgen.fleet.worker, loadgen.stats.wire, loadgen.stats.recorder; "
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False", out.stderr
