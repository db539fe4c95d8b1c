"""A large fleet's workers send endpoint histograms every few deltas: every per-second number stays exact, and
the cumulative ones lose nothing."""

from __future__ import annotations

import random

import msgpack
import pytest

from loadgen.stats.aggregate import Aggregate
from loadgen.stats.cadence import HistogramCadence, histograms_every
from loadgen.stats.recorder import Recorder, StatsDelta
from loadgen.stats.wire import decode_delta, encode_delta, merge_wire

QUANTILES = (0.5, 0.9, 0.99)


def second(rng: random.Random, recorder: Recorder, endpoints: int = 4) -> StatsDelta:
    for i in range(300):
        latency = int(rng.lognormvariate(9, 1))
        recorder.record("GET", f"/{i % endpoints}", latency, 10, ttfb_us=latency // 2, body_us=latency // 4,
                        setup=(100, 200, 300) if i % 40 == 0 else None)
    return recorder.flush()


def over_the_wire(delta: StatsDelta) -> StatsDelta:
    return decode_delta(msgpack.unpackb(msgpack.packb(encode_delta(delta), use_bin_type=True), raw=False))


@pytest.mark.parametrize(("hosts", "every"), [(1, 1), (249, 1), (250, 2), (600, 3), (1000, 5), (5000, 5)])
def test_the_cadence_grows_with_the_fleet(hosts: int, every: int) -> None:
    assert histograms_every(hosts) == every


def test_held_histograms_arrive_whole_and_seconds_stay_exact() -> None:
    """The same seconds, sent every delta and every third one: same report, same timeline."""
    reports = []
    for every in (1, 3):
        rng, recorder = random.Random(5), Recorder()
        cadence, aggregate = HistogramCadence(every, phase=1), Aggregate()
        timeline = []
        for k in range(8):
            delta = over_the_wire(cadence.pace(second(rng, recorder), final=k == 7))
            aggregate.add_delta("w", delta)
            timeline.append(aggregate.tick()["current"])
        reports.append((aggregate.report(), timeline))
    (sent_always, seconds_always), (sent_held, seconds_held) = reports
    assert seconds_held == seconds_always  # each second's percentiles: from its own total, every second
    for key in ("totals", "endpoints"):
        assert without_rates(sent_held[key]) == without_rates(sent_always[key])


def without_rates(value: object) -> object:
    """A report part without its per-second rates (they divide by the wall-clock duration)."""
    if isinstance(value, dict):
        return {k: without_rates(v) for k, v in value.items() if k != "rps"}
    if isinstance(value, list):
        return [without_rates(v) for v in value]
    return value


def test_only_released_deltas_carry_endpoint_histograms_and_rows() -> None:
    rng, recorder, cadence = random.Random(2), Recorder(), HistogramCadence(3, phase=0)
    carried = []
    for k in range(6):
        delta = second(rng, recorder)
        delta.processes = {"p1": [k, 0, 1, 1.0, 1.0, 0]}
        wire = encode_delta(cadence.pace(delta))
        carried.append(("h" in wire["e"], "w" in wire))
        assert sum(wire["e"]["r"]) == 300 and wire["T"][2] == 300  # counts and the second's total: always
    assert carried == [(False, False), (False, False), (True, True)] * 2


def test_an_endpoint_quiet_in_the_releasing_second_still_gets_its_histograms() -> None:
    recorder, cadence = Recorder(), HistogramCadence(2)
    recorder.record("GET", "/only-first", 1000, 1)
    cadence.pace(recorder.flush())
    recorder.record("GET", "/other", 2000, 1)
    released = over_the_wire(cadence.pace(recorder.flush()))
    quiet = released.entries[("GET", "/only-first")]
    assert quiet.requests == 0 and quiet.latency.count == 1


def test_merged_backlogs_keep_the_seconds_total() -> None:
    """A long cut merges unsent deltas; held-back histograms must not take the total's latency with them."""
    rng, recorder, cadence = random.Random(3), Recorder(), HistogramCadence(5)
    first, second_ = (encode_delta(cadence.pace(second(rng, recorder))) for _ in range(2))
    merged = decode_delta(merge_wire(first, second_))
    assert merged.total is not None and merged.total.count == 600
    assert merged.requests == 600


def test_a_machines_users_are_live_while_its_process_rows_wait() -> None:
    aggregate = Aggregate()
    aggregate.add_worker("m", "host-a", processes=2)
    with_rows = StatsDelta()
    with_rows.users, with_rows.processes = 7, {"m#0": [10, 0, 3, 5.0, 50.0, 0], "m#1": [12, 1, 4, 6.0, 50.0, 0]}
    aggregate.add_delta("m", with_rows)
    assert aggregate.users == 7
    without = StatsDelta()
    without.users = 9  # a ramp: the rows come with the next histograms, the machine's count now
    aggregate.add_delta("m", without)
    assert aggregate.users == 9
    assert {row.id for row in aggregate.rows_of("m")} == {"m#0", "m#1", "m"}
    assert [row["id"] for row in aggregate.report()["workers"]] == ["m#0", "m#1"]
