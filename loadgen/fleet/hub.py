"""One machine, one peer: the hub a ``worker --processes N`` parent runs for its children.

The children are ordinary workers that connect to the hub over a private IPC socket instead of to the
master. To them the hub is their master: it ships them the test, splits the machine's share among them,
answers their heartbeats with a lease that ends when the machine's own lease ends, and merges their
numbered deltas (exactly once, as the master does) into one delta a second with a row per process. To the
master the machine is one peer, so the master's load grows with machines, not cores.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable

import gevent
import zmq.green as zmq

from loadgen.fleet.acks import NO_LEASE
from loadgen.fleet.ledger import Ledger, Verdict
from loadgen.fleet.link import shown_id
from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Custom,
    Event,
    FrameError,
    Heartbeat,
    Hello,
    Message,
    Quit,
    Rate,
    Start,
    Started,
    Stats,
    Stop,
    Target,
    Warning_,
    Welcome,
    as_map,
    decode,
    encode,
)
from loadgen.stats.recorder import StatsDelta
from loadgen.stats.wire import WireError, decode_delta

log = logging.getLogger("loadgen.fleet.hub")
CHILD_TIMEOUT = 3.0  # a child silent this long is lost (its share goes to its siblings)


class Child:
    """One worker process of this machine, as the hub sees it."""

    __slots__ = ("identity", "id", "last_seen", "users", "cpu", "rss", "applied", "started", "final", "lost",
                 "run", "ledger", "desired", "failed", "requests", "failures", "denied")

    def __init__(self, identity: bytes, now: float) -> None:
        self.identity = identity
        self.id = shown_id(identity)
        self.last_seen = now
        self.users = 0
        self.cpu = 0.0
        self.rss = 0.0
        self.applied = 0
        self.started = False
        self.final = False
        self.lost = False
        self.failed = ""
        self.run = ""
        self.ledger = Ledger()
        self.desired: Target | Rate | None = None
        self.requests = 0
        self.failures = 0
        self.denied: Heartbeat | None = None  # its newest heartbeat answered without a lease


class Hub:
    """The children's master on this machine (see the module docstring)."""

    def __init__(self, upstream: Callable[[Message], bool]) -> None:
        self.upstream = upstream  # to the master: the children's warnings and events go straight up
        self.context = zmq.Context()
        self.folder = tempfile.mkdtemp(prefix="loadgen-hub-")  # 0700: no other user can reach the socket
        self.endpoint = f"ipc://{os.path.join(self.folder, 'hub.sock')}"
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.socket.bind(self.endpoint)
        self.hub_id = f"hub-{os.getpid()}"
        self.children: dict[bytes, Child] = {}
        self.start: Start | None = None  # the test the machine runs, forwarded to every child
        self.lease_until_of: Callable[[], float] = lambda: -math.inf  # the machine's lease: no child's outlasts it
        self.suspended = False
        self.master_time: Callable[[float], float] = lambda local: local
        self.pending = StatsDelta()
        self.version = 0
        self.on_change: Callable[[], None] = lambda: None  # the running children changed: GroupRunner re-splits
        self._greenlets = [gevent.spawn(self._receive_loop), gevent.spawn(self._watch_loop)]

    # ---- transport ---------------------------------------------------------------------------------------
    def send(self, child: Child, message: Message) -> None:
        try:
            self.socket.send_multipart([child.identity, encode(message)], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", child.id, exc)

    def _receive_loop(self) -> None:
        while True:
            try:
                identity, frame = self.socket.recv_multipart()
            except (zmq.ZMQError, ValueError):
                if self.socket.closed:
                    return
                gevent.sleep(0.01)
                continue
            try:
                self._handle(identity, decode(frame))
            except (FrameError, WireError) as exc:
                log.debug("dropped a frame from child %r: %s", identity, exc)
            except Exception:  # noqa: BLE001 - a child's frame must never stop the machine
                log.exception("error handling a frame from child %r", identity)

    def _watch_loop(self) -> None:
        while True:
            gevent.sleep(0.25)
            now = time.monotonic()
            for child in list(self.children.values()):
                if not child.lost and not child.final and now - child.last_seen > CHILD_TIMEOUT:
                    self._lose(child, f"silent for {CHILD_TIMEOUT:g} s")

    def _lose(self, child: Child, why: str) -> None:
        child.lost = True
        if child.id in self.pending.processes or child.started:
            row = self.pending.processes.setdefault(child.id, [child.requests, child.failures, 0, 0.0, 0.0, 0])
            row[5] = 1
        text = (f"process {child.id} of this machine {why}: its users go to the other processes; what it measured "
                "since its last delta is missing")
        print(f"loadgen worker: {text}", file=sys.stderr, flush=True)
        if child.started and self.start is not None:
            self.upstream(Warning_(kind="worker", message=text, key=f"process:{child.id}"))
        self.on_change()

    # ---- the children's messages -------------------------------------------------------------------------
    def _handle(self, identity: bytes, message: Message) -> None:
        now = time.monotonic()
        child = self.children.get(identity)
        if isinstance(message, Hello):
            if child is None or child.lost or child.final:
                child = self.children[identity] = Child(identity, now)
            self.send(child, Welcome(version=PROTOCOL_VERSION, master_id=self.hub_id))
            if self.start is not None and not child.started:
                self._start_child(child)
            return
        if child is None:
            return
        child.last_seen = now
        if isinstance(message, Heartbeat):
            child.users, child.cpu, child.rss, child.applied = (message.users, message.cpu_percent,
                                                                 message.rss_mb, message.applied)
            self._answer(child, message)
        elif isinstance(message, Started):
            if self.start is None or message.test_id != self.start.test_id:
                return
            if message.ok:
                child.started, child.run = True, message.run
                self.on_change()
            else:
                child.failed = message.error or "could not start"
        elif isinstance(message, Stats):
            self._stats(child, message)
        elif isinstance(message, (Warning_, Event, Custom)):  # a script's own messages go up as they are
            self.upstream(message)
        elif isinstance(message, Bye):
            if not child.final and not child.lost:
                self._lose(child, "left")

    def _answer(self, child: Child, beat: Heartbeat | None) -> None:
        """The child's lease ends with the machine's (the same clock: one machine); its clock is the master's."""
        now = time.monotonic()
        granted = NO_LEASE
        until = self.lease_until_of()
        if beat is not None and child.started and not self.suspended and now < until:
            granted = max(1e-3, until - beat.sent)
        if beat is not None:
            child.denied = beat if granted == NO_LEASE else None
        desired = child.desired
        repeat = desired is not None and child.applied < desired.version
        self.send(child, Ack(seq=beat.seq if beat is not None else 0, sent=beat.sent if beat is not None else 0.0,
                             clock=self.master_time(now), stats=child.ledger.acknowledged, lease=granted,
                             test_id=self.start.test_id if self.start is not None else "", master_id=self.hub_id,
                             desired=as_map(desired) if repeat and desired is not None else {}))

    def _stats(self, child: Child, message: Stats) -> None:
        if self.start is None or message.test_id != self.start.test_id:
            return
        if message.run != child.run:
            child.run, child.ledger = message.run, Ledger()
        verdict = child.ledger.judge(message.seq, message.last or message.seq) if message.seq else Verdict.MERGE
        if verdict is Verdict.MERGE:
            delta = decode_delta(message.delta)
            child.requests += delta.requests
            child.failures += delta.failures
            self.pending.absorb(delta)
            self.pending.processes[child.id] = [child.requests, child.failures, delta.users, delta.cpu_percent,
                                                delta.rss_mb, 0]
        if message.final:
            child.final = True
            self._answer(child, None)  # acknowledge it now

    # ---- the machine's test ------------------------------------------------------------------------------
    def begin(self, start: Start) -> None:
        """Forward the master's Start to every child that is connected (and to those that connect later)."""
        self.start = start
        self.pending = StatsDelta()
        for child in self.children.values():
            child.started = child.final = False
            child.failed = ""
            child.requests = child.failures = 0
            if not child.lost:
                self._start_child(child)

    def _start_child(self, child: Child) -> None:
        assert self.start is not None
        start = self.start
        self.send(child, Start(test_id=start.test_id, options=start.options, script_name=start.script_name,
                               script_files=start.script_files, clock=self.master_time(time.monotonic()),
                               lease=start.lease))

    def running(self) -> list[Child]:
        return sorted((c for c in self.children.values() if c.started and not c.lost and not c.final),
                      key=lambda c: c.id)

    def take(self) -> StatsDelta:
        """The children's numbers merged since the last call (one delta, a row per process)."""
        delta, self.pending = self.pending, StatsDelta()
        return delta

    def tell(self, child: Child, message: Target | Rate) -> None:
        self.version += 1
        message.version = self.version
        child.desired = message
        self.send(child, message)

    def forward(self, message: Custom) -> None:
        """A script's own message from the master: to every running process of the machine."""
        for child in self.running():
            self.send(child, message)

    def stop_children(self, timeout: float) -> None:
        for child in self.children.values():
            if child.started and not child.final and not child.lost and self.start is not None:
                self.send(child, Stop(test_id=self.start.test_id, timeout=timeout))

    def waiting(self) -> list[Child]:
        return [c for c in self.children.values() if c.started and not c.final and not c.lost]

    def regrant(self) -> None:
        """The machine's lease is (back) in force: answer again, with a lease, every heartbeat that got none,
        so the children start now rather than at their next heartbeat."""
        for child in self.running():
            if child.denied is not None:
                self._answer(child, child.denied)

    def fence_now(self) -> None:
        """The machine's lease lapsed: every child is told at once (an answer with no lease)."""
        self.suspended = True
        for child in self.running():
            self.send(child, Ack(seq=0, lease=NO_LEASE, test_id=self.start.test_id if self.start else "",
                                 master_id=self.hub_id, stats=child.ledger.acknowledged))

    def close(self) -> None:
        for child in self.children.values():
            self.send(child, Quit(reason="the machine's worker exits"))
        gevent.sleep(0.2)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self.socket.close(linger=200)
        try:
            os.rmdir(self.folder)
        except OSError:
            pass

