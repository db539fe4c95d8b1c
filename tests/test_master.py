"""The master in-process: real ZeroMQ sockets on loopback, fake workers, and a clock the test moves, so
liveness, rebalancing and the peer state machine are exact and need no long sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gevent
import pytest
import zmq
from fleet import FakeWorker, free_port, write_script

from loadgen.fleet.master import Master
from loadgen.fleet.peers import PeerState
from loadgen.fleet.protocol import Heartbeat, MasterHeartbeat, decode, encode
from loadgen.model.options import TestOptions
from loadgen.model.targets import RateTarget, UsersTarget
from loadgen.script.loader import load_script
from loadgen.stats.aggregate import Aggregate


class ManualClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def settle(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Let the master's greenlets run until ``predicate`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        gevent.sleep(0.01)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Master, list[FakeWorker], ManualClock, TestOptions]]:
    clock = ManualClock()
    path = write_script(tmp_path)
    options = TestOptions(file=str(path), host="http://127.0.0.1:9", users=10, max_users=20)
    port = free_port()
    master = Master(f"127.0.0.1:{port}", options, load_script(str(path)), Aggregate(), heartbeat_interval=0.05,
                    heartbeat_timeout=3.0, clock=clock)
    context = zmq.Context()
    fakes = [FakeWorker(context, port, f"fake-{i}").start() for i in range(2)]
    try:
        master.wait_for_workers(2, 10)
        yield master, fakes, clock, options
    finally:
        for fake in fakes:
            fake.close()
        master.close()
        context.term()


def users_of(fake: FakeWorker) -> int:
    return sum(fake.targets[-1].counts.values()) if fake.targets else -1


def test_loss_rebalance_and_return_follow_the_clock(setup: tuple) -> None:
    master, fakes, clock, options = setup
    master.start_test(options.plan())
    master.apply(UsersTarget(10, 10.0))
    settle(lambda: [users_of(f) for f in fakes] == [5, 5], what="5 users each")
    peer_a, peer_b = (master.peers[f.identity.encode()] for f in fakes)
    assert peer_a.state == peer_b.state == PeerState.RUNNING

    fakes[1].silent = True  # as if killed
    for _ in range(5):  # master time moves a second at a time; the live worker is heard at each step
        clock.t += 1.0
        settle(lambda: peer_a.last_seen == clock.t, what="a heartbeat of the live worker at the new time")
    settle(lambda: users_of(fakes[0]) == 10, what="the lost worker's users to move")
    assert peer_b.state == PeerState.LOST and peer_a.state == PeerState.RUNNING
    assert master.aggregate.workers["fake-1"].state == "lost"
    assert any("worker fake-1 (fake) lost" in w["message"] for w in master.aggregate.warnings)

    fakes[1].silent = False  # a hiccup: it still runs the test and is adopted again
    settle(lambda: peer_b.state == PeerState.RUNNING, what="the worker's return")
    settle(lambda: [users_of(f) for f in fakes] == [5, 5], what="the shares to come back")

    master.apply(RateTarget(30.0))
    settle(lambda: all(any(getattr(m, "rate", None) == 15.0 for m in f.received) for f in fakes), what="rates")
    master.stop(0.5)
    assert peer_a.state == peer_b.state == PeerState.DONE
    assert {row.state for row in master.aggregate.workers.values()} == {"done"}


def test_strangers_and_junk_are_counted_not_fatal(setup: tuple) -> None:
    master, _, _, _ = setup
    context = zmq.Context()
    stranger = context.socket(zmq.DEALER)
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(master.endpoint.replace("*", "127.0.0.1"))
    try:
        stranger.send(encode(Heartbeat(state="running")))
        stranger.send(b"\xc1 not msgpack")
        settle(lambda: master.gate.stray_frames == 1 and master.gate.bad_frames == 1, what="counted frames")
        # a stranger gets our id, so that a worker of a previous master introduces itself at once
        settle(lambda: stranger.poll(0), what="an answer to the stranger")
        assert isinstance(decode(stranger.recv()), MasterHeartbeat)
    finally:
        stranger.close(0)
        context.term()
    master.stop(0.1)
    kinds = {w["kind"]: w["message"] for w in master.aggregate.warnings}
    assert "dropped 1 malformed or unknown frames and 1 frames from peers that never said hello" in kinds["protocol"]
