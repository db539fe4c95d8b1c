"""The statistics core: histogram accuracy, merging, error normalisation and caps, deltas, aggregate."""

from __future__ import annotations

import math
import random

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.stats import Aggregate, Entry, ErrorTable, Histogram, Recorder, normalise
from loadgen.stats.histogram import bucket_bounds, bucket_of
from loadgen.stats.recorder import MAX_ENDPOINTS, OTHER_ENDPOINTS, StatsDelta
from loadgen.stats.spans import SpanHistogram
from loadgen.stats.wire import decode_delta, encode_delta

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact_percentile(sorted_values: list[int], q: float) -> int:
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def assert_within_one_percent(hist: Histogram, values: list[int]) -> None:
    ordered = sorted(values)
    for q in QUANTILES:
        exact = exact_percentile(ordered, q)
        got = hist.percentile(q)
        assert abs(got - exact) <= max(1, 0.01 * exact), (q, exact, got)


values_strategy = st.lists(
    st.one_of(st.integers(0, 200), st.integers(0, 10**6), st.integers(0, 10**10)), min_size=1, max_size=3000
)


@settings(max_examples=200, deadline=None)
@given(values_strategy)
def test_percentiles_within_one_percent(values: list[int]) -> None:
    hist = Histogram()
    hist.add_many(values)
    assert_within_one_percent(hist, values)
    assert hist.min == min(values) and hist.max == max(values) and hist.count == len(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(values_strategy, min_size=1, max_size=8))
def test_merge_equals_union(parts: list[list[int]]) -> None:
    """What a master does: each part crosses the wire, and merges into a span histogram."""
    merged, merged_list, union = SpanHistogram(), Histogram(), Histogram()
    for part in parts:
        h = Histogram()
        h.add_many(part)
        received = over_the_wire(h)
        merged.merge(received)
        merged_list.merge(received)
        union.add_many(part)
    for got in (merged, merged_list):
        assert dict(got.items()) == dict(union.items())
        assert (got.count, got.total, got.min, got.max) == (union.count, union.total, union.min, union.max)
        assert got.percentiles(QUANTILES) == union.percentiles(QUANTILES)
    flat = [v for part in parts for v in part]
    assert_within_one_percent(merged, flat)  # type: ignore[arg-type]


def over_the_wire(hist: Histogram) -> SpanHistogram:
    """``hist`` as a master receives it: a one-entry delta, encoded, through msgpack, decoded."""
    delta = StatsDelta()
    delta.entries[("GET", "/")] = entry = Entry("GET", "/")
    entry.latency, entry.requests = hist, hist.count
    frame = msgpack.packb(encode_delta(delta.seal()), use_bin_type=True)
    back = decode_delta(msgpack.unpackb(frame, raw=False, strict_map_key=False))
    assert back.total is not None and back.total.count == hist.count
    latency = back.entries[("GET", "/")].latency
    assert isinstance(latency, SpanHistogram)
    return latency


def test_large_random_samples() -> None:
    rng = random.Random(7)
    for dist in (lambda: rng.expovariate(1 / 5000), lambda: rng.lognormvariate(8, 2), lambda: rng.uniform(0, 1e6)):
        values = [int(dist()) for _ in range(200_000)]
        hist = Histogram()
        hist.add_many(values)
        assert_within_one_percent(hist, values)


def test_memory_is_bounded_whatever_the_sample_count() -> None:
    hist = Histogram()
    rng = random.Random(1)
    for _ in range(300_000):
        hist.add(int(rng.lognormvariate(10, 3)))
    assert len(hist.counts) == 2240  # fixed bucket space, independent of the sample count


def test_bucket_bounds_are_contiguous_and_tight() -> None:
    previous_high = -1
    for index in range(0, 2000):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1
        assert bucket_of(low) == index and bucket_of(high) == index
        assert (high - low) <= max(0, low / 64)
        previous_high = high


def test_percentiles_clamped_to_true_min_and_max() -> None:
    hist = Histogram()
    hist.add_many([1000, 1001, 1002, 5_000_123])
    assert hist.percentile(1.0) == 5_000_123
    assert hist.percentile(0.0) == 1000
    empty = Histogram()
    assert empty.percentile(0.99) == 0 and empty.mean == 0


def test_normalise_placeholders() -> None:
    msg = normalise("GET /item/123 failed on 10.1.2.3:8080 id 550e8400-e29b-41d4-a716-446655440000 obj at 0x7f3a2b")
    assert msg == "GET /item/<n> failed on <ip> id <uuid> obj at <addr>"
    assert normalise("ConnectionRefusedError: [Errno 111] Connection refused") == \
        "ConnectionRefusedError: [Errno 111] Connection refused"
    assert normalise("HTTP 503 Service Unavailable (request 42)") == "HTTP 503 Service Unavailable (request <n>)"
    assert normalise("token deadbeefdeadbeefcafe expired") == "token <hex> expired"
    assert normalise("x" * 5000).endswith("…") and len(normalise("x" * 5000)) <= 300


def test_error_table_caps_distinct_messages_per_endpoint() -> None:
    table = ErrorTable(cap=50)
    for i in range(1000):
        table.add("GET", "/a", f"failure kind {chr(65 + i % 26)}{chr(65 + (i // 26) % 26)} #{i}")
    for _ in range(10):
        table.add("GET", "/b", "same error")
    rows = table.rows()
    per_a = [r for r in rows if r["name"] == "/a"]
    assert len(per_a) == 51
    other = next(r for r in per_a if r["error"] == "other errors")
    assert sum(r["count"] for r in per_a) == 1000
    assert other["count"] == 1000 - sum(r["count"] for r in per_a if r["error"] != "other errors")
    assert other["count"] > 0
    assert [r for r in rows if r["name"] == "/b"][0]["count"] == 10


def test_error_table_merge_keeps_the_cap() -> None:
    a, b = ErrorTable(cap=3), ErrorTable(cap=3)
    for i in range(3):
        a.add("GET", "/", f"err {chr(97 + i)}")
        b.add("GET", "/", f"err {chr(100 + i)}")
    a.merge(b)
    assert len([r for r in a.rows() if r["error"] != "other errors"]) == 3
    assert a.total() == 6


def test_recorder_delta_roundtrip_and_reset() -> None:
    rec = Recorder()
    for i in range(100):
        rec.record("GET", "/x", 1000 + i, 50, None if i % 10 else "HTTP 500 Internal Server Error")
    rec.record_exception("Web.index", ValueError("boom 17"))
    delta = rec.flush()
    wire = msgpack.unpackb(msgpack.packb(encode_delta(delta)), strict_map_key=False)
    back = decode_delta(wire)
    entry = back.entries[("GET", "/x")]
    assert (entry.requests, entry.failures, entry.bytes) == (100, 10, 5000)
    assert entry.latency.min == 1000 and entry.latency.max == 1099
    assert {r["error"] for r in back.errors.rows()} == {"HTTP 500 Internal Server Error", "ValueError: boom <n>"}
    assert rec.flush().requests == 0


def test_recorder_caps_endpoints() -> None:
    rec = Recorder()
    for i in range(MAX_ENDPOINTS + 500):
        rec.record("GET", f"/item/{i}", 10, 0)
    delta = rec.flush()
    assert len(delta.entries) == MAX_ENDPOINTS + 1
    assert delta.entries[("GET", OTHER_ENDPOINTS)].requests == 500


def test_recorder_open_model_keeps_service_time() -> None:
    rec = Recorder(open_model=True)
    rec.record("GET", "/", 1000, 0, None, queued_us=500_000)
    entry = rec.flush().entries[("GET", "/")]
    assert entry.latency.max == 501_000 and entry.service is not None and entry.service.max == 1000


def test_aggregate_report_timeline_and_workers() -> None:
    agg = Aggregate()
    for worker in ("w1", "w2"):
        rec = Recorder()
        rec.users = 5
        for i in range(1000):
            rec.record("GET", "/", 2000 + i, 100, "HTTP 500 x" if i < 10 else None)
        agg.add_delta(worker, rec.flush())
    snap = agg.tick()
    assert snap["requests"] == 2000 and snap["users"] == 10
    report = agg.report()
    assert report["schema"] == "loadgen.report/1"
    assert report["totals"]["requests"] == 2000 and report["totals"]["failures"] == 20
    assert report["endpoints"][0]["latency_ms"]["min"] == 2.0
    assert report["timeline"][0]["requests"] == 2000
    assert {w["id"] for w in report["workers"]} == {"w1", "w2"}
    assert report["errors"][0]["count"] == 20
