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

from loadgen.fleet.acks import answer, lost_text, pause_text
from loadgen.fleet.closing import close_accounts, drain, wait_for_finals
from loadgen.fleet.custom import CustomMessages
from loadgen.fleet.distributor import Distributor
from loadgen.fleet.gate import Gate
from loadgen.fleet.intake import Intake
from loadgen.fleet.lease import lease_duration
from loadgen.fleet.link import shown_id
from loadgen.fleet.liveness import Liveness
from loadgen.fleet.peers import ACTIVE, Peer, PeerState
from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    Bye,
    Custom,
    Event,
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
    VersionMismatch,
    Warning_,
    Welcome,
    decode,
)
from loadgen.fleet.roster import wait_for
from loadgen.fleet.router import Router
from loadgen.fleet.security import CurveKeys
from loadgen.fleet.shipping import script_files
from loadgen.model.errors import ScriptError
from loadgen.model.health import cpu_notice
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions
from loadgen.model.plan import TestPlan
from loadgen.model.targets import LoadTarget
from loadgen.script.loader import Script
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.cadence import histograms_every
from loadgen.stats.recorder import StatsDelta
from loadgen.stats.wire import WireError

log = logging.getLogger("loadgen.fleet.master")
MAX_WORKER_WARNINGS = 1000
MAX_EVENTS = 10_000


class Master:
    """Accepts workers, ships tests to them, rebalances on loss and join, merges their deltas. Frames are
    stamped (liveness) and handled in the receive greenlet; the intake's greenlet merges deltas. A worker
    silent for ``heartbeat_timeout`` is lost (its users go to the others); its users stopped before that,
    as each answer to a heartbeat is a lease of ``heartbeat_timeout - 1`` s (``fleet.lease``)."""

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
        self._ids: set[str] = set()  # the shown ids of the peers: one connection each
        self.lease = lease_duration(heartbeat_timeout, heartbeat_interval)
        self.liveness = Liveness(heartbeat_timeout, min(0.25, heartbeat_interval / 4), clock())
        self.intake = Intake(aggregate, self._final, lambda notice: self._pending_warnings.append(notice))
        self.distributor = Distributor(script)
        self._worker_warnings = 0
        self.start_errors: list[str] = []
        self._pending_warnings: list[Notice] = []
        self._forced = False
        self.router = Router(bind, keys)
        self.endpoint = self.router.endpoint
        self.gate = Gate(self.master_id, self.send, clock)
        self.custom = CustomMessages(self.peers, self.send)  # the script's own messages, either way
        self.script_name, self.script_files = script_files(script.path if not script.path.endswith("__init__.py")
                                                           else os.path.dirname(script.path))
        self._greenlets = [gevent.spawn(self.router.receive_loop, self._on_frames), gevent.spawn(self._heartbeat_loop),
                           gevent.spawn(self._watch_loop), self.intake._greenlet]

    def send(self, peer: Peer | bytes, message: Message) -> None:
        self.router.send(peer.identity if isinstance(peer, Peer) else peer, message)

    def _on_frames(self, frames: list[bytes]) -> None:
        identity = frames[0]
        known = self.peers.get(identity)
        if known is not None:
            known.last_seen = self.clock()  # liveness is when a frame arrives, however long handling takes
        if self.gate.unreadable(frames, known is not None):
            return
        try:
            self._handle(identity, decode(frames[1]))
        except VersionMismatch as exc:
            self._refuse_version(identity, exc.version)
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the master
            self.gate.bad_frames += 1
            log.debug("dropped a frame from %r: %s", identity, exc,
                      exc_info=not isinstance(exc, (FrameError, WireError)))

    def _heartbeat_loop(self) -> None:
        """For workers not yet welcomed (or of a previous master): our id. Running workers get answers."""
        while True:
            beat = MasterHeartbeat(test_id=self.test_id, master_id=self.master_id)
            for peer in list(self.peers.values()):
                if peer.state not in (PeerState.LOST, PeerState.RUNNING):
                    self.send(peer, beat)
            gevent.sleep(self.heartbeat_interval)

    def _answer(self, peer: Peer, beat: Heartbeat | None) -> None:
        """An Ack: renews the worker's lease (when it answers a heartbeat), acknowledges its deltas and
        repeats its desired state until it runs it."""
        self.send(peer, answer(peer, beat, self.clock(), self.intake.acknowledged(peer), self.lease, self.test_id,
                               self.master_id))

    def _watch_loop(self) -> None:
        while True:
            gevent.sleep(min(0.25, self.heartbeat_interval / 4))
            try:
                self._expire()
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("liveness check failed")

    def _expire(self) -> None:
        now = self.clock()
        pause = self.liveness.check(self.peers.values(), now)
        if pause is not None and self.running:
            text = pause_text(pause)
            print(f"loadgen master: {text}", file=sys.stderr, flush=True)
            self.aggregate.add_event("master paused", "master", pause[0], pause[1], self.aggregate.users, text)
        lost_running = False
        for peer in list(self.peers.values()):
            if peer.state in (PeerState.LOST, PeerState.DONE, PeerState.FAILED) \
                    or not self.liveness.silent(peer, now):
                continue
            was = self._move(peer, PeerState.LOST)
            if was in ACTIVE:
                lost_running = True
                text = lost_text(peer, now, self.running)
                print(f"loadgen master: {text}", file=sys.stderr, flush=True)
                self.aggregate.warn("worker", text, key=f"lost:{peer.id}")
                peer.lost_event = self.aggregate.add_event("lost", peer.id, peer.last_seen, None, peer.users, text)
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
        if isinstance(message, Heartbeat):
            peer.users = message.users
            peer.cpu_percent = message.cpu_percent
            peer.applied = message.applied
            if peer.state == PeerState.LOST:
                self._returned(peer, message)
            self._answer(peer, message)
        elif isinstance(message, Stats):
            if not peer.started and message.test_id == self.test_id:
                raise FrameError("stats from a worker that has not started the test")
            self.intake.accept(peer, message, lost=peer.state == PeerState.LOST)
        elif isinstance(message, Event):
            if self.test_id and len(self.aggregate.events) < MAX_EVENTS:
                self.aggregate.add_event(message.kind[:40], peer.id, message.start, message.end,
                                         max(0, message.users), message.detail[:500])
        elif isinstance(message, Started):
            self._started(peer, message)
        elif isinstance(message, Warning_):
            if self._worker_warnings < MAX_WORKER_WARNINGS:
                self._worker_warnings += 1
                key = (message.key or message.message)[:200]
                self._pending_warnings.append(Notice(message.kind[:20], message.message[:1000], key))
        elif isinstance(message, Custom):
            self.custom.received(peer, message)
        elif isinstance(message, Bye):
            if peer.state in (PeerState.RUNNING, PeerState.STARTING, PeerState.IDLE, PeerState.LOST):
                was = self._move(peer, PeerState.DONE)
                if was == PeerState.RUNNING and self.running:
                    self._rebalance()

    def _refuse_version(self, identity: bytes, version: object) -> None:
        if (notice := self.gate.refuse_version(identity, version)) is not None:
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
        if peer is None and (shown := shown_id(identity)) in self._ids:
            return self.gate.taken(identity, shown)
        if peer is None:
            peer = self.peers[identity] = Peer(identity, hello.host[:255], min(max(1, hello.processes), 1024),
                                                self.clock())
            self._ids.add(peer.id)
            print(f"loadgen master: worker {peer.id} joined from {peer.host}", file=sys.stderr, flush=True)
        peer.host = hello.host[:255]
        peer.has_script = hello.has_script
        peer.session = hello.session
        peer.last_seen = self.clock()
        self.send(peer, Welcome(version=PROTOCOL_VERSION, master_id=self.master_id))
        if not fresh and peer.state in (PeerState.STARTING, PeerState.RUNNING, PeerState.LOST):
            return  # introduced again (a reconnect): it still holds what it was given; its heartbeats say how
        if self.running:
            # a late joiner, or a worker that dropped its test (it lost us for a while): give it a share
            self._start_peer(peer)
        else:
            self._move(peer, PeerState.IDLE)

    def _returned(self, peer: Peer, beat: Heartbeat) -> None:
        """A worker marked lost talks again (a network cut healed, a long pause ended)."""
        now = self.clock()
        holds = beat.test_id == self.test_id and bool(self.test_id) and beat.state in ("running", "fenced")
        if peer.lost_event is not None:
            away = self.aggregate.since_start(now) - peer.lost_event["t"]
            self.aggregate.close_event(peer.lost_event, now)
            peer.lost_event = None
            if holds:
                self.aggregate.add_event("rejoined", peer.id, now, now, peer.users,
                                         f"worker {peer.id} is back after {away:.1f} s")
        if not self.running:
            if holds:
                self.send(peer, Stop(test_id=self.test_id, timeout=0.0))  # for its final numbers
            elif beat.state != "running":
                self._move(peer, PeerState.IDLE)
            return
        if holds:
            print(f"loadgen master: worker {peer.id} is back; it gets its share again", file=sys.stderr, flush=True)
            self.aggregate.add_worker(peer.id, peer.host, peer.processes)
            self._move(peer, PeerState.RUNNING)
            self._rebalance(handover=True)
        elif beat.state == "idle":
            self._start_peer(peer)

    def _final(self, peer: Peer) -> None:
        """The intake merged a worker's final delta."""
        peer.final = True
        was_running = peer.state == PeerState.RUNNING
        if peer.state != PeerState.LOST or not self.running:
            self._move(peer, PeerState.DONE)
        self._answer(peer, None)  # acknowledge it now: the worker waits for that before it leaves
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
        peer.run = message.run
        self.aggregate.add_worker(peer.id, peer.host, peer.processes)
        self._move(peer, PeerState.RUNNING)
        if self.running:
            self._rebalance(handover=True)

    # ---- the fleet seen by the controller ----------------------------------------------------------------
    def active(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.state == PeerState.RUNNING]

    def wait_for_workers(self, count: int, timeout: float, stop: Any = None, processes: bool = False) -> None:
        """Wait until ``count`` workers (machines; with ``processes``, processes) are connected and idle."""
        wait_for(self.peers.values, count, timeout, self.endpoint, stop, processes)

    def start_test(self, plan: TestPlan, timeout: float = 60.0) -> None:
        """Ship the test to every connected worker and wait until each has loaded it (or failed, or gone)."""
        self.distributor.begin(plan)
        self.test_id = uuid.uuid4().hex
        self.intake.begin(self.test_id)
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
        peer.desired = None
        files = {} if peer.has_script else self.script_files
        self.send(peer, Start(test_id=self.test_id, options=self.options.to_dict(), script_name=self.script_name,
                              script_files=files, clock=self.clock(), lease=self.lease,
                              histograms_every=histograms_every(len(self.peers))))

    def apply(self, target: LoadTarget) -> None:
        """The controller's target for the whole fleet: split over the running workers now and on every change."""
        self.distributor.target = target
        self._rebalance()

    def _rebalance(self, handover: bool = False) -> None:
        """Send every running worker its desired state (``Distributor``); ``handover`` (a worker joined or came
        back): those giving users up stop them at the pace the others start them, so the total holds."""
        peers = sorted(self.active(), key=lambda p: p.id)
        messages = self.distributor.split(self.test_id, [p.id for p in peers], handover,
                                          {p.id: p.processes for p in peers})
        for peer in peers:
            if peer.id in messages:
                peer.desired = messages[peer.id]
                self.send(peer, peer.desired)

    def collect(self) -> list[tuple[str, StatsDelta]]:
        """Nothing to hand over: the master merges every delta into the aggregate when it arrives."""
        return []

    def check(self) -> list[Notice]:
        """Once a second from the controller: hot workers, and what the workers and the link said since."""
        for peer in self.peers.values():
            if peer.cpu.observe(peer.cpu_percent if peer.state == PeerState.RUNNING else 0.0):
                self._pending_warnings.append(cpu_notice(f"worker {peer.id} ({peer.host})", f"cpu:{peer.id}",
                                                         peer.processes))
        pending, self._pending_warnings = self._pending_warnings, []
        return pending

    def _move(self, peer: Peer, state: PeerState) -> PeerState:
        """Change a peer's state (through its one writer) and keep its report row in step."""
        previous = peer.move(state)
        if state in (PeerState.RUNNING, PeerState.DONE, PeerState.LOST):
            for row in self.aggregate.rows_of(peer.id):
                row.state = "lost" if row.lost_process else state.label
        return previous

    def force_stop(self) -> None:
        """A second Ctrl-C: workers kill their users now instead of waiting for their tasks."""
        self._forced = True

    def stop(self, timeout: float) -> None:
        """Stop every worker and wait for its final delta; a worker lost meanwhile gets a few seconds to come
        back with it, and is named in the report if it does not."""
        self.running = False
        for peer in self.peers.values():
            if peer.state in ACTIVE or (peer.state == PeerState.LOST and peer.started):
                self.send(peer, Stop(test_id=self.test_id, timeout=timeout))
        wait_for_finals(self.peers.values, timeout, self.heartbeat_timeout, lambda: self._forced,
                        lambda peer: self.send(peer, Stop(test_id=self.test_id, timeout=0.0)))
        drain(self.intake, self.aggregate)
        close_accounts(self.peers.values(), self.aggregate, self.intake, self.clock())
        for notice in self.check():
            self.aggregate.notify(notice)
        self.gate.late_deltas = self.intake.late
        self.gate.bad_frames += self.intake.bad
        for notice in self.gate.notices(self.router.refused, self.router.impostor_frames):
            self.aggregate.notify(notice)

    def quit_workers(self) -> None:
        for peer in self.peers.values():
            if peer.state != PeerState.LOST:
                self.send(peer, Quit(reason="master exiting"))

    def close(self) -> None:
        gevent.sleep(0.1)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self.router.close()
