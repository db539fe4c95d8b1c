"""The pure pieces of fleet truth: leases, the master's clock, numbered deltas, the ledger, liveness credit,
handover rates, the fleet grid and late binning. No sockets; times are passed in."""

from __future__ import annotations

import math

import pytest

from loadgen.engine.placement import Placement
from loadgen.fleet.lease import Lease, MasterClock, check_timeouts, lease_duration
from loadgen.fleet.ledger import Ledger, Verdict
from loadgen.fleet.liveness import Liveness
from loadgen.fleet.outbox import RESEND_AFTER, Outbox
from loadgen.fleet.protocol import Ack, Target, as_map, decode, decode_map, encode
from loadgen.fleet.shares import handover_seconds
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import Recorder
from loadgen.stats.wire import decode_delta, encode_delta, merge_wire


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_runs_from_when_the_answered_heartbeat_was_sent_not_from_the_answer() -> None:
    lease = Lease(2.0)
    assert not lease.valid(0.0)  # nothing answered yet: no user may run
    first = lease.beat(10.0)
    second = lease.beat(11.0)
    assert lease.answered(second, 2.0) == 11.0
    assert lease.valid(12.9) and not lease.valid(13.1)
    assert lease.answered(first, 2.0) is None  # older than one already answered: it extends nothing
    assert lease.until == 13.0
    lease.revoke()
    assert not lease.valid(11.5)


def test_the_lease_lapses_before_the_master_declares_the_worker_lost() -> None:
    """Whichever way the link fails, the last answered heartbeat was sent no later than the master's last
    receipt, so the worker's deadline (sent + lease) falls a margin before the master's (received + timeout)."""
    for timeout, interval in ((3.0, 1.0), (1.5, 0.25), (10.0, 1.0), (2.0, 0.5)):
        assert check_timeouts(timeout, interval) is None
        lease = lease_duration(timeout, interval)
        assert lease >= 2 * interval and timeout - lease >= 1.0 - 1e-9
    assert "give at least 3 s" in (check_timeouts(1.5, 1.0) or "")


def test_the_master_clock_takes_the_offset_of_the_fastest_round_trip() -> None:
    clock = MasterClock()
    clock.one_way(1000.0, 10.0)  # before any round trip: the one-way estimate
    assert clock.master_time(10.0) == 1000.0
    clock.sample(20.0, 1010.05, 20.1)  # 100 ms round trip, symmetric: offset 990
    clock.sample(30.0, 1020.9, 31.0)  # 1 s, lopsided: ignored for the faster one
    assert clock.offset == pytest.approx(990.0)
    assert clock.delay == pytest.approx(0.1)


def wire(requests: int) -> dict:
    recorder = Recorder()
    for _ in range(requests):
        recorder.record("GET", "/", 1000, 10)
    return encode_delta(recorder.flush())


def test_the_outbox_resends_what_is_unacknowledged_and_merges_only_never_sent_deltas() -> None:
    box = Outbox(merge_wire, limit=3)
    a = box.add(wire(1), 0.0, 1.0)
    assert [p.first for p in box.due(0.0)] == [1]
    a.sent_at = 0.0
    assert box.due(1.0) == []  # sent, not yet stale
    assert [p.first for p in box.due(1.0, reconnected=True)] == [1]
    assert [p.first for p in box.due(RESEND_AFTER + 0.5)] == [1]  # the acknowledgement stalled
    for n in (2, 3, 4, 5):
        box.add(wire(n), n - 1.0, float(n))
    # five pending over a limit of three: never-sent neighbours merged, the sent one left alone
    assert [(p.first, p.last) for p in box.pending][0] == (1, 1)
    assert sum(decode_delta(p.delta).requests for p in box.pending) == 15
    assert box.merged == 2
    box.acknowledge(3)
    assert all(p.last > 3 for p in box.pending)
    final = box.add(wire(0), 5.0, 6.0, final=True)
    assert not box.final_acknowledged
    box.acknowledge(final.last)
    assert box.pending == [] and box.final_acknowledged


def test_the_ledger_merges_each_number_once_and_in_order() -> None:
    ledger = Ledger()
    assert ledger.judge(1, 1) is Verdict.MERGE
    assert ledger.judge(1, 1) is Verdict.DUPLICATE
    assert ledger.judge(3, 3) is Verdict.EARLY  # 2 is missing: the worker resends both
    assert ledger.acknowledged == 1
    assert ledger.judge(2, 2) is Verdict.MERGE
    assert ledger.judge(3, 5) is Verdict.MERGE
    assert ledger.judge(5, 7) is Verdict.OVERLAP  # cannot be split: reported, not double counted
    assert ledger.acknowledged == 7
    assert (ledger.duplicates, ledger.early, ledger.overlaps) == (1, 1, 1)


class Seen:
    def __init__(self, last_seen: float) -> None:
        self.last_seen = last_seen


def test_a_master_that_did_not_run_credits_its_workers_instead_of_losing_them() -> None:
    live = Liveness(3.0, 0.25, now=0.0)
    peers = [Seen(0.0), Seen(-2.0)]
    assert live.check(peers, 0.25) is None
    assert live.check(peers, 12.25) == (0.25, 12.25)  # stopped for 12 s
    assert not live.silent(peers[0], 12.25)
    assert live.silent(peers[1], 12.25 + 1.5)  # it was already 2 s silent before the pause
    assert live.check(peers, 12.5) is None


def test_a_handover_lasts_as_long_as_the_slowest_taker_needs() -> None:
    previous = {"a": {"U": 10}, "b": {"U": 10}}
    messages = {"a": Target("t", {"U": 7}, 2.0), "b": Target("t", {"U": 7}, 2.0), "c": Target("t", {"U": 6}, 2.0)}
    assert handover_seconds(previous, messages) == pytest.approx(3.0)  # c needs 3 s to start its 6
    assert handover_seconds(previous, {"a": Target("t", {"U": 5}, 2.0)}) == 0.0  # nobody gains: at once


def test_slots_interleave_on_the_fleet_grid() -> None:
    starts = []
    for slot in range(4):
        place = Placement()
        place.slot, place.slots, place.offset = slot, 4, 1000.0 + slot * 0.0137  # each its own local clock
        local = place.next_on_grid(5.0 + slot * 0.3, 1.0, slot / 4)
        starts.append((local + place.offset) % 1.0)
    assert starts == pytest.approx([0.0, 0.25, 0.5, 0.75])
    lone = Placement()
    assert lone.run_until == math.inf
    assert 5.0 <= lone.next_on_grid(5.0, 0.5, 0.1) < 5.5


def test_a_late_delta_goes_into_the_second_it_measured() -> None:
    clock = Clock()
    aggregate = Aggregate(clock=clock)
    aggregate.restart_clock()
    recorder = Recorder()
    for _ in range(5):
        clock.now += 1.0
        for _ in range(10):
            recorder.record("GET", "/", 1000, 1)
        aggregate.add_delta("w", recorder.flush(), at=clock.now - 0.1)
        aggregate.tick()
    for _ in range(7):
        recorder.record("GET", "/", 5000, 1)
    aggregate.add_delta("w", recorder.flush(), at=102.5)  # measured during the third second, arrives at 105
    assert [row[2] for row in aggregate.timeline] == [10, 10, 17, 10, 10]
    assert aggregate.timeline[2][8] > aggregate.timeline[1][8]  # its p99 includes the late 5 ms requests
    assert sum(e.requests for e in aggregate.entries.values()) == 57
    clock.now += 1.0
    for _ in range(3):
        recorder.record("GET", "/", 1000, 1)
    aggregate.add_delta("w", recorder.flush(), at=clock.now - 0.2)  # a fresh one: the current second
    aggregate.tick()
    assert [row[2] for row in aggregate.timeline] == [10, 10, 17, 10, 10, 3]


def test_desired_state_travels_inside_an_ack() -> None:
    target = Target("t", {"U": 3}, 1.5, version=7, slot=1, slots=3, handover=0.5)
    ack = decode(encode(Ack(seq=4, desired=as_map(target))))
    assert isinstance(ack, Ack)
    assert decode_map(ack.desired) == target


def test_a_machine_of_n_processes_takes_n_shares_and_n_slots() -> None:
    from loadgen.fleet.distributor import Distributor
    from loadgen.model.options import TestOptions
    from loadgen.model.targets import RateTarget, UsersTarget

    class Script:
        user_classes = {"U": type("U", (), {"weight": 1, "fixed_count": 0})}

    distributor = Distributor(Script())  # type: ignore[arg-type]
    distributor.begin(TestOptions(users=8, spawn_rate=4.0).plan())
    distributor.target = UsersTarget(8, 4.0)
    split = distributor.split("t", ["big", "small"], sizes={"big": 3, "small": 1})
    big, small = split["big"], split["small"]
    assert isinstance(big, Target) and isinstance(small, Target)
    assert (big.counts, small.counts) == ({"U": 6}, {"U": 2})
    assert (big.slot, big.slots, small.slot, small.slots) == (0, 4, 3, 4)
    assert big.spawn_rate == pytest.approx(3.0) and small.spawn_rate == pytest.approx(1.0)
    distributor.target = RateTarget(40.0)
    rates = distributor.split("t", ["big", "small"], sizes={"big": 3, "small": 1})
    assert [rates[w].rate for w in ("big", "small")] == pytest.approx([30.0, 10.0])  # type: ignore[union-attr]
