"""Fleet truth on loopback with a real master and a worker made of a raw DEALER socket: every delta merged
exactly once whatever is resent, the final one acknowledged, desired state repeated until it runs, leases
granted only to running workers, and the fleet counted by machines or by processes."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pytest
import zmq
from fleet import Fleet, Proc, free_port, wait_until, write_script

from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Heartbeat,
    Hello,
    Message,
    Start,
    Started,
    Stats,
    Stop,
    Target,
    Welcome,
    decode,
    decode_map,
    encode,
)
from loadgen.stats.recorder import Recorder
from loadgen.stats.wire import encode_delta

pytestmark = pytest.mark.timeout(90)


class RawWorker:
    """A worker that speaks the protocol by hand, one call at a time."""

    def __init__(self, port: int, identity: str, processes: int = 1) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, identity.encode())
        self.socket.connect(f"tcp://127.0.0.1:{port}")
        self.identity = identity
        self.seq = 0
        self.inbox: list[Message] = []
        self.send(Hello(version=PROTOCOL_VERSION, worker_id=identity, host="raw", session=identity,
                        processes=processes))

    def send(self, message: Message) -> None:
        self.socket.send(encode(message))

    def receive(self, kind: type[Message], timeout: float = 10.0, where: object = None) -> Message:
        """The next message of ``kind`` (matching ``where`` when given); others are kept in ``inbox``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.poll(50):
                message = decode(self.socket.recv())
                self.inbox.append(message)
                if isinstance(message, kind) and (where is None or where(message)):
                    return message
        raise AssertionError(f"no {kind.__name__} within {timeout:g} s; got {[m.type for m in self.inbox[-10:]]}")

    def beat(self, test_id: str, applied: int = 0, state: str = "running") -> Ack:
        self.seq += 1
        seq = self.seq
        self.send(Heartbeat(state=state, test_id=test_id, seq=seq, sent=time.monotonic(), applied=applied))
        ack = self.receive(Ack, where=lambda m: m.seq == seq)
        assert isinstance(ack, Ack)
        return ack

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()


def delta(requests: int) -> dict:
    recorder = Recorder()
    for _ in range(requests):
        recorder.record("GET", "/raw", 1000, 1)
    return encode_delta(recorder.flush())


def start(worker: RawWorker) -> Start:
    worker.receive(Welcome)
    begin = worker.receive(Start)
    assert isinstance(begin, Start)
    worker.send(Started(test_id=begin.test_id, run="r1"))
    return begin


def test_every_delta_is_merged_once_however_often_it_is_resent(fleet: Fleet, tmp_path: Path) -> None:
    port = free_port()
    master = fleet.master(write_script(tmp_path), "http://127.0.0.1:9", "-u", "1", "-t", "4s", "--insecure-no-auth",
                          port=port)
    worker = RawWorker(port, "raw-1")
    try:
        test_id = start(worker).test_id
        assert worker.beat(test_id).lease > 0  # running: the master grants the lease
        parts = {1: 1, 2: 10, 3: 100}
        for seq in (1, 1, 3, 2, 3, 2, 1):  # a duplicate, one early (2 missing), resends in any order
            worker.send(Stats(test_id=test_id, delta=delta(parts[seq]), run="r1", seq=seq, last=seq))
        wait_until(lambda: worker.beat(test_id).stats == 3, 5, what="deltas 1-3 acknowledged")
        stop = worker.receive(Stop, timeout=15)
        assert isinstance(stop, Stop)
        worker.send(Stats(test_id=test_id, delta=delta(1000), final=True, run="r1", seq=4, last=4))
        ack = worker.receive(Ack, where=lambda m: m.stats == 4)  # the final is acknowledged at once
        worker.send(Stats(test_id=test_id, delta=delta(1000), final=True, run="r1", seq=4, last=4))  # resent
        assert ack.seq == 0
        assert master.wait(30) == 0, master.stderr()
    finally:
        worker.close()
    report = fleet.report()
    assert report["totals"]["requests"] == 1111, report["totals"]
    assert not [w for w in report["warnings"] if "final numbers" in w["message"]]


def test_a_missing_final_delta_is_named(fleet: Fleet, tmp_path: Path) -> None:
    port = free_port()
    master = fleet.master(write_script(tmp_path), "http://127.0.0.1:9", "-u", "1", "-t", "3s", "--heartbeat-interval",
                          "0.25", "--heartbeat-timeout", "1.5", "--insecure-no-auth", port=port)
    worker = RawWorker(port, "raw-quiet")
    try:
        test_id = start(worker).test_id
        worker.beat(test_id)
        worker.send(Stats(test_id=test_id, delta=delta(5), run="r1", seq=1, last=1))
        worker.receive(Stop, timeout=15)  # ... and says nothing more
        assert master.wait(30) == 0, master.stderr()
    finally:
        worker.close()
    report = fleet.report()
    missing = [e for e in report["events"] if e["kind"] == "final missing"]
    assert missing and missing[0]["worker"] == "raw-quiet"
    assert any("raw-quiet" in w["message"] and "final numbers never arrived" in w["message"]
               for w in report["warnings"])
    assert report["totals"]["requests"] == 5


def test_the_desired_state_is_repeated_until_the_worker_runs_it(fleet: Fleet, tmp_path: Path) -> None:
    """A lost Target is repaired: every answer carries it until the worker's heartbeat says it applied it."""
    port = free_port()
    master = fleet.master(write_script(tmp_path), "http://127.0.0.1:9", "-u", "3", "-t", "4s", "--insecure-no-auth",
                          "--allow-empty",
                          port=port)
    worker = RawWorker(port, "raw-deaf")
    try:
        test_id = start(worker).test_id
        worker.receive(Target)  # "lost": not applied
        ack = worker.beat(test_id, applied=0)
        desired = decode_map(ack.desired)
        assert isinstance(desired, Target) and sum(desired.counts.values()) == 3 and desired.version > 0
        assert (desired.slot, desired.slots) == (0, 1)
        again = decode_map(worker.beat(test_id, applied=0).desired)
        assert again == desired
        assert worker.beat(test_id, applied=desired.version).desired == {}  # applied: no more repeats
        worker.receive(Stop, timeout=15)
        worker.send(Stats(test_id=test_id, delta=delta(0), final=True, run="r1", seq=1, last=1))
        assert master.wait(30) == 0, master.stderr()
    finally:
        worker.close()


def test_expect_workers_counts_machines_and_expect_processes_counts_processes(fleet: Fleet, tmp_path: Path) -> None:
    """Each peer is one machine (a --processes N machine speaks for its N processes): --expect-workers 2 starts
    with two machines of two processes; --expect-processes 5 waits for a fifth process and says so."""
    script = write_script(tmp_path)
    port = free_port()
    master = fleet.master(script, "http://127.0.0.1:9", "-u", "1", "-t", "1s", "--insecure-no-auth",
                          port=port, expect=2)
    workers = [RawWorker(port, "machine-0", processes=2)]
    try:
        master.wait_for("1/2 workers connected", 10)
        workers.append(RawWorker(port, "machine-1", processes=2))
        master.wait_for("2/2 workers connected", 10)
    finally:
        for worker in workers:
            worker.close()
    port = free_port()
    master = fleet.start("master", "master", "-f", str(script), "-H", "http://127.0.0.1:9", "--bind",
                         f"127.0.0.1:{port}", "--expect-processes", "5", "--expect-workers-timeout", "1", "-q",
                         "--insecure-no-auth")
    workers = [RawWorker(port, f"machine-{i}", processes=2) for i in range(2)]
    try:
        assert master.wait(20) == 2
        assert "only 4 of 5 worker processes connected within 1 s" in master.stderr()
        assert "--expect-processes" in master.stderr() and "Traceback" not in master.stderr()
    finally:
        for worker in workers:
            worker.close()


def test_timeouts_that_cannot_fence_are_a_usage_error(fleet: Fleet, tmp_path: Path) -> None:
    master = fleet.start("master", "master", "-f", str(write_script(tmp_path)), "-H", "http://127.0.0.1:9",
                         "--heartbeat-timeout", "1.5")
    assert master.wait(20) == 2
    err = master.stderr()
    assert "--heartbeat-timeout 1.5 s is too short for heartbeats every 1 s: give at least 3 s" in err
    assert "Traceback" not in err


def test_a_master_takes_more_workers_than_its_soft_file_limit(fleet: Fleet, tmp_path: Path) -> None:
    """A connection per worker is a file per worker: started with a soft limit of 64 open files, the master
    lifts it to the hard limit and takes 100 workers (it used to fail at ~1,000 on a default Linux limit)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 400, f"the hard open-files limit here is {hard}: too low for this test"
    port = free_port()
    argv = ["prlimit", f"--nofile=64:{hard}", sys.executable, "-m", "loadgen", "master", "-f",
            str(write_script(tmp_path)), "-H", "http://127.0.0.1:9", "--bind", f"127.0.0.1:{port}",
            "--expect-workers", "100", "--expect-workers-timeout", "20", "-t", "1s", "-q", "--insecure-no-auth"]
    master = Proc("master-64-files", argv, tmp_path, fleet.env)
    fleet.procs.append(master)
    workers = [RawWorker(port, f"many-{i}") for i in range(100)]
    try:
        master.wait_for("100/100 workers connected", 20)
    finally:
        for worker in workers:
            worker.close()
