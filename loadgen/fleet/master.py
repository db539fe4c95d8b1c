"""``loadgen master``: the ROUTER end. Holds the truth: who is alive, who runs what, every statistic."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import gevent
import zmq.green as zmq

from loadgen.fleet.gate import Gate
from loadgen.fleet.link import bind_endpoint, master_socket, printable
from loadgen.fleet.peers import ACTIVE, Peer, PeerState
from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    Bye,
    FrameError,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    Message,
    Quit,
    Start,
    Started,
    Stats,
    Stop,
    Target,
    VersionMismatch,
    Warning_,
    Welcome,
    decode,
    encode,
)
from loadgen.fleet.security import CurveKeys, ZapHandler
from loadgen.fleet.shares import shares
from loadgen.fleet.shipping import script_files
from loadgen.model.errors import ScriptError, UsageError
from loadgen.model.health import cpu_notice
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions
from loadgen.model.plan import TestPlan
from loadgen.model.targets import LoadTarget
from loadgen.script.loader import Script
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import StatsDelta
from loadgen.stats.wire import WireError, decode_delta

log = logging.getLogger("loadgen.fleet.master")
MAX_WORKER_WARNINGS = 1000


class Master:
    """Accepts workers, ships tests to them, rebalances on loss and join, merges their deltas.

    Every frame is handled in the receive greenlet; liveness is checked four times a heartbeat by the watch
    greenlet, so a silent worker is marked lost (and its users handed to the others) within
    ``heartbeat_timeout`` plus a fraction of a second, whatever the controller is doing.
    """

    def __init__(self, bind: str, options: TestOptions, script: Script, aggregate: Aggregate,
                 heartbeat_interval: float = 1.0, heartbeat_timeout: float = 3.0,
                 keys: CurveKeys | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.options = options
        self.script = script
        self.aggregate = aggregate
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.master_id = uuid.uuid4().hex[:8]
        self.test_id = ""
        self.running = False  # between start_test() and stop(): joiners get a share, losses are rebalanced
        self.peers: dict[bytes, Peer] = {}
        self.merging = True  # until stop() returns: deltas are merged into the aggregate as they arrive
        self._worker_warnings = 0
        self.target: LoadTarget | None = None
        self._assigned: dict[str, dict[str, int]] = {}  # the users per class each worker was last sent
        self.plan: TestPlan | None = None
        self.start_errors: list[str] = []
        self._pending_warnings: list[Notice] = []
        self._forced = False
        self.context = zmq.Context()
        self.zap: ZapHandler | None = None
        if keys is not None:
            self.zap = ZapHandler(self.context, keys.allowed)
        self.endpoint = bind_endpoint(bind)
        self.socket = master_socket(self.context, bind, self.endpoint, keys)
        self.gate = Gate(self.master_id, self.send, clock)
        self.script_name, self.script_files = script_files(script.path if not script.path.endswith("__init__.py")
                                                           else os.path.dirname(script.path))
        self._greenlets = [gevent.spawn(self._receive_loop), gevent.spawn(self._heartbeat_loop),
                           gevent.spawn(self._watch_loop)]

    # ---- transport ---------------------------------------------------------------------------------------
    def send(self, peer: Peer | bytes, message: Message) -> None:
        identity = peer.identity if isinstance(peer, Peer) else peer
        try:
            self.socket.send_multipart([identity, encode(message)], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", printable(identity), exc)

    def _receive_loop(self) -> None:
        sock = self.socket
        while True:
            try:
                frames = sock.recv_multipart(copy=True)
            except zmq.ZMQError:
                if sock.closed:
                    return
                gevent.sleep(0.01)
                continue
            identity = frames[0]
            if len(frames) != 2:
                self.gate.bad_frames += 1
                continue
            try:
                message = decode(frames[1])
                self._handle(identity, message)
                if message.type == "stats":
                    gevent.sleep(0)  # let the tick and the heartbeats run between deltas of a burst
            except VersionMismatch as exc:
                self._refuse_version(identity, exc.version)
            except (FrameError, WireError) as exc:
                self.gate.bad_frames += 1
                log.debug("dropped a frame from %r: %s", identity, exc)
            except Exception:  # noqa: BLE001 - a frame must never kill the master
                self.gate.bad_frames += 1
                log.debug("error handling a frame from %r", identity, exc_info=True)

    def _heartbeat_loop(self) -> None:
        while True:
            beat = MasterHeartbeat(test_id=self.test_id, master_id=self.master_id)
            for peer in list(self.peers.values()):
                if peer.state != PeerState.LOST:
                    self.send(peer, beat)
            gevent.sleep(self.heartbeat_interval)

    def _watch_loop(self) -> None:
        while True:
            gevent.sleep(min(0.25, self.heartbeat_interval / 4))
            try:
                self._expire()
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("liveness check failed")

    def _expire(self) -> None:
        now = self.clock()
        lost_running = False
        for peer in list(self.peers.values()):
            if peer.state in (PeerState.LOST, PeerState.DONE, PeerState.FAILED) \
                    or now - peer.last_seen <= self.heartbeat_timeout:
                continue
            was = self._move(peer, PeerState.LOST)
            if was in ACTIVE:
                lost_running = True
                where = "its users go to the other workers" if self.running else "its last numbers may be missing"
                text = f"worker {peer.id} ({peer.host}) lost: silent for {now - peer.last_seen:.1f} s; {where}"
                print(f"loadgen master: {text}", file=sys.stderr, flush=True)
                self.aggregate.warn("worker", text, key=f"lost:{peer.id}")
        if lost_running and self.running:
            self._rebalance()

    # ---- messages ----------------------------------------------------------------------------------------
    def _handle(self, identity: bytes, message: Message) -> None:
        if isinstance(message, Hello):
            self._hello(identity, message)
            return
        peer = self.peers.get(identity)
        if peer is None:
            self.gate.stray(identity)
            return
        peer.last_seen = self.clock()
        if isinstance(message, Heartbeat):
            peer.users = message.users
            peer.cpu_percent = message.cpu_percent
            if peer.state == PeerState.LOST:
                self._returned(peer, message)
        elif isinstance(message, Stats):
            self._stats(peer, message)
        elif isinstance(message, Started):
            self._started(peer, message)
        elif isinstance(message, Warning_):
            if self._worker_warnings < MAX_WORKER_WARNINGS:
                self._worker_warnings += 1
                key = (message.key or message.message)[:200]
                self._pending_warnings.append(Notice(message.kind[:20], message.message[:1000], key))
        elif isinstance(message, Bye):
            if peer.state in (PeerState.RUNNING, PeerState.STARTING, PeerState.IDLE, PeerState.LOST):
                was = self._move(peer, PeerState.DONE)
                if was == PeerState.RUNNING and self.running:
                    self._rebalance()

    def _refuse_version(self, identity: bytes, version: object) -> None:
        notice = self.gate.refuse_version(identity, version)
        if notice is not None:
            self._pending_warnings.append(notice)

    def _hello(self, identity: bytes, hello: Hello) -> None:
        if hello.version != PROTOCOL_VERSION:  # decode() already refuses these; kept for direct callers
            self._refuse_version(identity, hello.version)
            return
        try:
            identity.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("hello from a peer whose id is not UTF-8") from None
        peer = self.peers.get(identity)
        fresh = peer is None or hello.session != peer.session or not hello.session
        if peer is None:
            peer = self.peers[identity] = Peer(identity, hello.host[:255], min(max(1, hello.processes), 1024),
                                                self.clock())
            print(f"loadgen master: worker {peer.id} joined from {peer.host}", file=sys.stderr, flush=True)
        peer.host = hello.host[:255]
        peer.has_script = hello.has_script
        peer.session = hello.session
        peer.last_seen = self.clock()
        self.send(peer, Welcome(version=PROTOCOL_VERSION, master_id=self.master_id))
        if not fresh and peer.state in (PeerState.STARTING, PeerState.RUNNING):
            return  # the same introduction twice: the worker still runs what it was given
        if self.running:
            # a late joiner, or a worker that dropped its test (it lost us for a while): give it a share
            self._start_peer(peer)
        else:
            self._move(peer, PeerState.IDLE)

    def _returned(self, peer: Peer, beat: Heartbeat) -> None:
        """A worker marked lost talks again (a network hiccup, a long pause)."""
        if not self.running:
            if beat.state != "running":
                self._move(peer, PeerState.IDLE)
            return
        if beat.state == "running" and beat.test_id == self.test_id:
            print(f"loadgen master: worker {peer.id} is back; it gets its share again", file=sys.stderr, flush=True)
            self.aggregate.add_worker(peer.id, peer.host, peer.processes)
            self._move(peer, PeerState.RUNNING)
            self._rebalance()
        elif beat.state == "idle":
            self._start_peer(peer)

    def _stats(self, peer: Peer, message: Stats) -> None:
        if message.test_id != self.test_id or not self.test_id:
            return  # a previous test's numbers
        if not peer.started:
            raise FrameError("stats from a worker that has not started the test")
        delta = decode_delta(message.delta)
        # Numbers a worker reports are never discarded, even when it was marked lost meanwhile: the
        # requests reached the target. They count as long as this test has not been reported.
        if not self.merging:
            return  # the report is being written
        if peer.state == PeerState.LOST:
            self.gate.late_deltas += 1
        # Merged on arrival, in this greenlet: the work spreads over the second instead of piling up in the
        # controller's tick, which then only closes the current second. Same windows as merging at collect().
        self.aggregate.add_delta(peer.id, delta)
        if message.final:
            peer.final = True
            was_running = peer.state == PeerState.RUNNING
            if peer.state != PeerState.LOST or not self.running:
                self._move(peer, PeerState.DONE)
            if was_running and self.running:
                self._rebalance()  # it stopped on its own (e.g. SIGTERM): its users go to the others

    def _started(self, peer: Peer, message: Started) -> None:
        if message.test_id != self.test_id or peer.state not in (PeerState.STARTING, PeerState.LOST):
            return
        if not message.ok:
            self._move(peer, PeerState.FAILED)
            print(f"loadgen master: worker {peer.id} could not start the test: {message.error}",
                  file=sys.stderr, flush=True)
            self._pending_warnings.append(Notice("worker", f"worker {peer.id} could not start: "
                                                 f"{message.error[:1000]}", f"failed:{peer.id}"))
            self.start_errors.append(message.error)
            return
        peer.started = True
        peer.test_id = message.test_id
        self.aggregate.add_worker(peer.id, peer.host, peer.processes)
        self._move(peer, PeerState.RUNNING)
        if self.running:
            self._rebalance()

    # ---- the fleet seen by the controller ----------------------------------------------------------------
    def active(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.state == PeerState.RUNNING]

    def wait_for_workers(self, count: int, timeout: float, stop: Any = None) -> None:
        """Wait until ``count`` workers are connected and idle; ``UsageError`` after ``timeout`` or when the
        ``stop`` event is set (a signal)."""
        deadline = time.monotonic() + timeout
        announced = -1
        while True:
            if stop is not None and stop.is_set():
                raise UsageError("stopped before the workers connected")
            ready = [p for p in self.peers.values() if p.state == PeerState.IDLE]
            if len(ready) != announced:
                announced = len(ready)
                print(f"loadgen master: {len(ready)}/{count} workers connected on {self.endpoint}",
                      file=sys.stderr, flush=True)
            if len(ready) >= count:
                return
            if time.monotonic() >= deadline:
                raise UsageError(
                    f"only {len(ready)} of {count} workers connected within {timeout:g} s: start more "
                    f"'loadgen worker --master HOST' processes, check the port is reachable, or lower --expect-workers")
            gevent.sleep(0.05)

    def start_test(self, plan: TestPlan, timeout: float = 60.0) -> None:
        """Ship the test to every connected worker and wait until each has loaded it (or failed, or gone)."""
        self.plan = plan
        self.test_id = uuid.uuid4().hex
        self._assigned = {}
        self.start_errors = []
        self.running = True
        for peer in list(self.peers.values()):
            if peer.state == PeerState.IDLE:
                self._start_peer(peer)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(p.state == PeerState.STARTING for p in self.peers.values()):
                break
            gevent.sleep(0.02)
        if not self.active():
            self.running = False
            detail = self.start_errors[0] if self.start_errors else "no worker answered in time"
            raise ScriptError(f"no worker could start the test: {detail}")

    def _start_peer(self, peer: Peer) -> None:
        self._move(peer, PeerState.STARTING)
        peer.final = False
        peer.started = False
        files = {} if peer.has_script else self.script_files
        self.send(peer, Start(test_id=self.test_id, options=self.options.to_dict(),
                              script_name=self.script_name, script_files=files))

    def apply(self, target: LoadTarget) -> None:
        """The controller's target for the whole fleet: split over the running workers now and on every change."""
        self.target = target
        self._rebalance()

    def _rebalance(self) -> None:
        peers = self.active()
        if not peers or self.plan is None or self.target is None:
            return
        classes = self.script.user_classes
        messages = shares(self.test_id, [p.id for p in peers], self.target, self.plan,
                          {name: cls.weight for name, cls in classes.items()},
                          {name: cls.fixed_count for name, cls in classes.items()}, self._assigned)
        self._assigned = {w: m.counts for w, m in messages.items() if isinstance(m, Target)}
        for peer in peers:
            self.send(peer, messages[peer.id])

    def collect(self) -> list[tuple[str, StatsDelta]]:
        """Nothing to hand over: the master merges every delta into the aggregate when it arrives."""
        return []

    def check(self) -> list[Notice]:
        """Once a second from the controller: hot workers, and what the workers and the link said since."""
        for peer in self.peers.values():
            busy = peer.cpu_percent if peer.state == PeerState.RUNNING else 0.0
            if peer.cpu.observe(busy):
                self._pending_warnings.append(cpu_notice(f"worker {peer.id} ({peer.host})", f"cpu:{peer.id}"))
        pending, self._pending_warnings = self._pending_warnings, []
        return pending

    def _move(self, peer: Peer, state: PeerState) -> PeerState:
        """Change a peer's state (through its one writer) and keep its report row in step."""
        previous = peer.move(state)
        if state in (PeerState.RUNNING, PeerState.DONE, PeerState.LOST):
            row = self.aggregate.workers.get(peer.id)
            if row is not None:
                row.state = state.label
        return previous

    def force_stop(self) -> None:
        """A second Ctrl-C: workers kill their users now instead of waiting for their tasks."""
        self._forced = True

    def stop(self, timeout: float) -> None:
        """Stop every worker and wait for its final delta (or its loss)."""
        self.running = False
        for peer in self.peers.values():
            if peer.state in (PeerState.RUNNING, PeerState.STARTING):
                self.send(peer, Stop(test_id=self.test_id, timeout=timeout))
        deadline = time.monotonic() + timeout + self.heartbeat_timeout + 2.0
        forced = False
        while time.monotonic() < deadline:
            waiting = [p for p in self.peers.values() if p.state in ACTIVE and not p.final]
            if not waiting:
                break
            if not forced and timeout > 0 and self._forced:
                forced = True
                for peer in waiting:
                    self.send(peer, Stop(test_id=self.test_id, timeout=0.0))
                deadline = min(deadline, time.monotonic() + self.heartbeat_timeout + 1.0)
            gevent.sleep(0.02)
        self.merging = False
        for peer in self.peers.values():
            row = self.aggregate.workers.get(peer.id)
            if row is not None:
                row.state = "lost" if peer.state == PeerState.LOST and not peer.final else "done"
        for notice in self.check():
            self.aggregate.notify(notice)
        for notice in self.gate.notices(self.zap.refused if self.zap is not None else 0):
            self.aggregate.notify(notice)

    def quit_workers(self) -> None:
        for peer in self.peers.values():
            if peer.state != PeerState.LOST:
                self.send(peer, Quit(reason="master exiting"))

    def close(self) -> None:
        gevent.sleep(0.1)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self.zap is not None:
            self.zap.close()
        self.socket.close(linger=500)
