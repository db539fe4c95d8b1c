"""``loadgen master``: the ROUTER end. Holds the truth: who is alive, who runs what, every statistic."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from typing import Any

import gevent
import zmq.green as zmq

from loadgen.controller import TestPlan
from loadgen.dispatch import assign, class_counts, split_by_weight, split_rate
from loadgen.errors import ScriptError, UsageError
from loadgen.options import TestOptions
from loadgen.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Bye,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    Message,
    ProtocolError,
    Quit,
    Rate,
    Reject,
    Start,
    Started,
    Stats,
    Stop,
    Target,
    VersionMismatch,
    Warning_,
    Welcome,
    check_delta,
    decode,
    encode,
)
from loadgen.script import Script
from loadgen.security import CurveKeys, ZapHandler
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import StatsDelta

log = logging.getLogger("loadgen.master")
MAX_SCRIPT_BYTES = 20 * 1024 * 1024
CPU_WARN_PERCENT = 90.0
CPU_WARN_SECONDS = 5
MAX_WORKER_WARNINGS = 1000


class Peer:
    """One worker process as the master sees it."""

    __slots__ = ("identity", "id", "host", "processes", "has_script", "session", "last_seen", "state", "users",
                 "cpu_percent", "hot_since", "started", "final", "test_id")

    def __init__(self, identity: bytes, host: str, processes: int) -> None:
        self.identity = identity
        self.id = identity.decode("utf-8")
        self.host = host
        self.processes = processes
        self.has_script = False
        self.session = ""
        self.last_seen = time.monotonic()
        self.state = "idle"  # idle → starting → running → done | lost | failed
        self.users = 0
        self.cpu_percent = 0.0
        self.hot_since: float | None = None
        self.started = False
        self.final = False
        self.test_id = ""


def script_files(path: str) -> tuple[str, dict[str, bytes]]:
    """The files to ship: the script file, or every file of a package directory."""
    if os.path.isdir(path):
        root = os.path.abspath(path)
        base = os.path.basename(root.rstrip(os.sep))
        files: dict[str, bytes] = {}
        total = 0
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for name in names:
                if name.startswith(".") or name.endswith(".pyc"):
                    continue
                full = os.path.join(folder, name)
                rel = os.path.join(base, os.path.relpath(full, root))
                with open(full, "rb") as handle:
                    files[rel] = handle.read()
                total += len(files[rel])
                if total > MAX_SCRIPT_BYTES:
                    raise UsageError(f"script package {path!r} is over {MAX_SCRIPT_BYTES >> 20} MB: "
                                     "ship less, or give workers their own copy with -f")
        return os.path.join(base, "__init__.py"), files
    with open(path, "rb") as handle:
        return os.path.basename(path), {os.path.basename(path): handle.read()}


class Master:
    """Accepts workers, ships tests to them, rebalances on loss and join, merges their deltas.

    Every frame is handled in the receive greenlet; liveness is checked four times a heartbeat by the watch
    greenlet, so a silent worker is marked lost (and its users handed to the others) within
    ``heartbeat_timeout`` plus a fraction of a second, whatever the controller is doing.
    """

    def __init__(self, bind: str, options: TestOptions, script: Script, aggregate: Aggregate,
                 heartbeat_interval: float = 1.0, heartbeat_timeout: float = 3.0,
                 keys: CurveKeys | None = None) -> None:
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
        self.bad_frames = 0  # malformed, unknown type, wrong version, invalid content
        self.stray_frames = 0  # well-formed, from a peer that never said hello (unauthenticated)
        self.late_deltas = 0  # deltas merged although their worker had been marked lost
        self._stray_replies: dict[bytes, float] = {}
        self._refused: set[bytes] = set()
        self._worker_warnings = 0
        self.users_target = 0
        self.spawn_rate = 1.0
        self.rate: float | None = None
        self.plan: TestPlan | None = None
        self.start_errors: list[str] = []
        self._pending_warnings: list[tuple[str, str, str]] = []
        self.context = zmq.Context()
        self.zap: ZapHandler | None = None
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a worker reconnecting under its id takes its place
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.setsockopt(zmq.SNDHWM, 10_000)
        if keys is not None:
            self.zap = ZapHandler(self.context, keys.allowed)
            keys.apply_server(self.socket)
        self.endpoint = _bind_endpoint(bind)
        try:
            self.socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            raise UsageError(f"cannot listen on {bind} ({exc}): choose another --bind address or port") from None
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
            log.debug("send to %s failed: %s", _printable(identity), exc)

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
                self.bad_frames += 1
                continue
            try:
                message = decode(frames[1])
                self._handle(identity, message)
                if message.type == "stats":
                    gevent.sleep(0)  # let the tick and the heartbeats run between deltas of a burst
            except VersionMismatch as exc:
                self._refuse_version(identity, exc.version)
            except ProtocolError as exc:
                self.bad_frames += 1
                log.debug("dropped a frame from %r: %s", identity, exc)
            except Exception:  # noqa: BLE001 - a frame must never kill the master
                self.bad_frames += 1
                log.debug("error handling a frame from %r", identity, exc_info=True)

    def _heartbeat_loop(self) -> None:
        while True:
            beat = MasterHeartbeat(test_id=self.test_id, master_id=self.master_id)
            for peer in list(self.peers.values()):
                if peer.state != "lost":
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
        now = time.monotonic()
        lost_running = False
        for peer in list(self.peers.values()):
            if peer.state in ("lost", "done", "failed") or now - peer.last_seen <= self.heartbeat_timeout:
                continue
            was = peer.state
            peer.state = "lost"
            row = self.aggregate.workers.get(peer.id)
            if row is not None:
                row.state = "lost"
            if was in ("running", "starting"):
                lost_running = True
                where = "its users go to the other workers" if self.running else "its last numbers may be missing"
                print(f"loadgen master: worker {peer.id} ({peer.host}) lost: silent for "
                      f"{now - peer.last_seen:.1f} s; {where}", file=sys.stderr, flush=True)
                self.aggregate.warn("worker", f"worker {peer.id} ({peer.host}) lost: silent for "
                                    f"{now - peer.last_seen:.1f} s; {where}", key=f"lost:{peer.id}")
        if lost_running and self.running:
            self._rebalance()

    # ---- messages ----------------------------------------------------------------------------------------
    def _handle(self, identity: bytes, message: Message) -> None:
        if isinstance(message, Hello):
            self._hello(identity, message)
            return
        peer = self.peers.get(identity)
        if peer is None:
            self._stray(identity)
            return
        peer.last_seen = time.monotonic()
        if isinstance(message, Heartbeat):
            peer.users = message.users
            peer.cpu_percent = message.cpu_percent
            if peer.state == "lost":
                self._returned(peer, message)
        elif isinstance(message, Stats):
            self._stats(peer, message)
        elif isinstance(message, Started):
            self._started(peer, message)
        elif isinstance(message, Warning_):
            if self._worker_warnings < MAX_WORKER_WARNINGS:
                self._worker_warnings += 1
                key = (message.key or message.message)[:200]
                self._pending_warnings.append((message.kind[:20], message.message[:1000], key))
        elif isinstance(message, Bye):
            if peer.state in ("running", "starting", "idle", "lost"):
                was_running = peer.state == "running"
                peer.state = "done"
                row = self.aggregate.workers.get(peer.id)
                if row is not None:
                    row.state = "done"
                if was_running and self.running:
                    self._rebalance()

    def _stray(self, identity: bytes) -> None:
        """A frame from a peer that never said hello: dropped and counted. A worker of a previous master
        (restarted on the same address) gets a heartbeat with our id, so that it introduces itself at once."""
        self.stray_frames += 1
        now = time.monotonic()
        if now - self._stray_replies.get(identity, 0.0) >= 1.0:
            if len(self._stray_replies) > 10_000:
                self._stray_replies.clear()
            self._stray_replies[identity] = now
            self.send(identity, MasterHeartbeat(master_id=self.master_id))

    def _refuse_version(self, identity: bytes, version: object) -> None:
        self.bad_frames += 1
        name = _printable(identity)
        reason = (f"protocol version {str(version)[:20]} does not match the master's {PROTOCOL_VERSION}: "
                  "install the same loadgen version on the master and every worker")
        self.send(identity, Reject(reason=reason))
        if identity not in self._refused and len(self._refused) < 1000:
            self._refused.add(identity)
            print(f"loadgen master: refused worker {name}: {reason}", file=sys.stderr, flush=True)
            self._pending_warnings.append(("worker", f"refused worker {name}: {reason}", f"version:{name}"))

    def _hello(self, identity: bytes, hello: Hello) -> None:
        if hello.version != PROTOCOL_VERSION:  # decode() already refuses these; kept for direct callers
            self._refuse_version(identity, hello.version)
            return
        try:
            identity.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("hello from a peer whose id is not UTF-8") from None
        peer = self.peers.get(identity)
        fresh = peer is None or hello.session != peer.session or not hello.session
        if peer is None:
            peer = self.peers[identity] = Peer(identity, hello.host[:255], min(max(1, hello.processes), 1024))
            print(f"loadgen master: worker {peer.id} joined from {peer.host}", file=sys.stderr, flush=True)
        peer.host = hello.host[:255]
        peer.has_script = hello.has_script
        peer.session = hello.session
        peer.last_seen = time.monotonic()
        self.send(peer, Welcome(version=PROTOCOL_VERSION, master_id=self.master_id))
        if not fresh and peer.state in ("starting", "running"):
            return  # the same introduction twice: the worker still runs what it was given
        if self.running:
            # a late joiner, or a worker that dropped its test (it lost us for a while): give it a share
            self._start_peer(peer)
        else:
            peer.state = "idle"

    def _returned(self, peer: Peer, beat: Heartbeat) -> None:
        """A worker marked lost talks again (a network hiccup, a long pause)."""
        if not self.running:
            if beat.state != "running":
                peer.state = "idle"
            return
        if beat.state == "running" and beat.test_id == self.test_id:
            print(f"loadgen master: worker {peer.id} is back; it gets its share again", file=sys.stderr, flush=True)
            peer.state = "running"
            row = self.aggregate.add_worker(peer.id, peer.host, peer.processes)
            row.state = "running"
            self._rebalance()
        elif beat.state == "idle":
            self._start_peer(peer)

    def _stats(self, peer: Peer, message: Stats) -> None:
        if message.test_id != self.test_id or not self.test_id:
            return  # a previous test's numbers
        if not peer.started:
            raise ProtocolError("stats from a worker that has not started the test")
        check_delta(message.delta)
        delta = StatsDelta.from_dict(message.delta)
        # Numbers a worker reports are never discarded, even when it was marked lost meanwhile: the
        # requests reached the target. They count as long as this test has not been reported.
        if not self.merging:
            return  # the report is being written
        if peer.state == "lost":
            self.late_deltas += 1
        # Merged on arrival, in this greenlet: the work spreads over the second instead of piling up in the
        # controller's tick, which then only closes the current second. Same windows as merging at collect().
        self.aggregate.add_delta(peer.id, delta)
        if message.final:
            peer.final = True
            was_running = peer.state == "running"
            if peer.state != "lost" or not self.running:
                peer.state = "done"
                row = self.aggregate.workers.get(peer.id)
                if row is not None:
                    row.state = "done"
            if was_running and self.running:
                self._rebalance()  # it stopped on its own (e.g. SIGTERM): its users go to the others

    def _started(self, peer: Peer, message: Started) -> None:
        if message.test_id != self.test_id or peer.state not in ("starting", "lost"):
            return
        if not message.ok:
            peer.state = "failed"
            print(f"loadgen master: worker {peer.id} could not start the test: {message.error}",
                  file=sys.stderr, flush=True)
            self._pending_warnings.append(("worker", f"worker {peer.id} could not start: {message.error[:1000]}",
                                           f"failed:{peer.id}"))
            self.start_errors.append(message.error)
            return
        peer.started = True
        peer.state = "running"
        peer.test_id = message.test_id
        row = self.aggregate.add_worker(peer.id, peer.host, peer.processes)
        row.state = "running"
        if self.running:
            self._rebalance()

    # ---- the fleet seen by the controller ----------------------------------------------------------------
    def active(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.state == "running"]

    def wait_for_workers(self, count: int, timeout: float, stop: Any = None) -> None:
        """Wait until ``count`` workers are connected and idle; ``UsageError`` after ``timeout`` or when the
        ``stop`` event is set (a signal)."""
        deadline = time.monotonic() + timeout
        announced = -1
        while True:
            if stop is not None and stop.is_set():
                raise UsageError("stopped before the workers connected")
            ready = [p for p in self.peers.values() if p.state == "idle"]
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
        self.start_errors = []
        self.running = True
        for peer in list(self.peers.values()):
            if peer.state == "idle":
                self._start_peer(peer)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(p.state == "starting" for p in self.peers.values()):
                break
            gevent.sleep(0.02)
        if not self.active():
            self.running = False
            detail = self.start_errors[0] if self.start_errors else "no worker answered in time"
            raise ScriptError(f"no worker could start the test: {detail}")

    def _start_peer(self, peer: Peer) -> None:
        peer.state = "starting"
        peer.final = False
        peer.started = False
        files = {} if peer.has_script else self.script_files
        self.send(peer, Start(test_id=self.test_id, options=self.options.to_dict(),
                              script_name=self.script_name, script_files=files))

    def set_users(self, total: int, spawn_rate: float) -> None:
        self.users_target = total
        self.spawn_rate = spawn_rate
        self.rate = None
        self._rebalance()

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        self._rebalance()

    def _rebalance(self) -> None:
        peers = self.active()
        if not peers or self.plan is None:
            return
        ids = [p.id for p in peers]
        capacity = {p.id: p.processes for p in peers}
        if self.rate is not None:
            shares = split_rate(self.rate, ids, capacity)
            pools = split_by_weight(self.plan.max_users, capacity)
            pre = split_by_weight(self.plan.pre_allocate, capacity)
            for peer in peers:
                self.send(peer, Rate(test_id=self.test_id, rate=shares[peer.id], max_users=max(1, pools[peer.id]),
                                     pre_allocate=pre[peer.id]))
            return
        classes = self.script.user_classes
        weights = {name: cls.weight for name, cls in classes.items()}
        fixed = {name: cls.fixed_count for name, cls in classes.items()}
        counts = class_counts(self.users_target, weights, fixed)
        per_worker = assign(ids, counts, capacity)
        total = max(1, self.users_target)
        for peer in peers:
            share = sum(per_worker[peer.id].values())
            rate = max(self.spawn_rate * share / total, 0.01)
            self.send(peer, Target(test_id=self.test_id, counts=per_worker[peer.id], spawn_rate=rate))

    def collect(self) -> list[tuple[str, StatsDelta]]:
        """Nothing to hand over: the master merges every delta into the aggregate when it arrives."""
        return []

    def check(self, aggregate: Aggregate) -> None:
        """Once a second from the controller: CPU warnings and the warnings workers sent."""
        now = time.monotonic()
        for peer in self.peers.values():
            row = aggregate.workers.get(peer.id)
            if row is None or peer.state != "running":
                peer.hot_since = None
                continue
            row.cpu_percent = peer.cpu_percent
            if peer.cpu_percent > CPU_WARN_PERCENT:
                peer.hot_since = peer.hot_since or now
                if now - peer.hot_since >= CPU_WARN_SECONDS:
                    aggregate.warn("cpu", f"worker {peer.id} ({peer.host}) above {CPU_WARN_PERCENT:.0f}% CPU "
                                   f"for {CPU_WARN_SECONDS} s: its numbers may measure itself; add workers",
                                   key=f"cpu:{peer.id}")
            else:
                peer.hot_since = None
        self._flush_warnings(aggregate)

    def _flush_warnings(self, aggregate: Aggregate) -> None:
        pending, self._pending_warnings = self._pending_warnings, []
        for kind, message, key in pending:
            aggregate.warn(kind, message, key=key)

    def stop(self, timeout: float) -> None:
        """Stop every worker and wait for its final delta (or its loss)."""
        self.running = False
        for peer in self.peers.values():
            if peer.state in ("running", "starting"):
                self.send(peer, Stop(test_id=self.test_id, timeout=timeout))
        deadline = time.monotonic() + timeout + self.heartbeat_timeout + 2.0
        forced = False
        while time.monotonic() < deadline:
            waiting = [p for p in self.peers.values() if p.state in ("running", "starting") and not p.final]
            if not waiting:
                break
            if not forced and timeout > 0 and self.plan is not None and self.plan.stop_timeout == 0:
                # a second Ctrl-C (the controller zeroes the plan's stop timeout): users are killed now
                forced = True
                for peer in waiting:
                    self.send(peer, Stop(test_id=self.test_id, timeout=0.0))
                deadline = min(deadline, time.monotonic() + self.heartbeat_timeout + 1.0)
            gevent.sleep(0.02)
        self.merging = False
        for peer in self.peers.values():
            row = self.aggregate.workers.get(peer.id)
            if row is not None:
                row.state = "lost" if peer.state == "lost" and not peer.final else "done"
        self._flush_warnings(self.aggregate)
        if self.bad_frames or self.stray_frames:
            self.aggregate.warn("protocol", f"dropped {self.bad_frames} malformed or unknown frames and "
                                f"{self.stray_frames} frames from peers that never said hello", key="frames")
        if self.late_deltas:
            self.aggregate.warn("worker", f"{self.late_deltas} deltas arrived from workers already marked lost; "
                                "they are counted", key="late")
        if self.zap is not None and self.zap.refused:
            self.aggregate.warn("security", f"refused {self.zap.refused} connections whose CURVE key is not in "
                                "--curve-allow", key="curve")

    def quit_workers(self) -> None:
        for peer in self.peers.values():
            if peer.state != "lost":
                self.send(peer, Quit(reason="master exiting"))

    def close(self) -> None:
        gevent.sleep(0.1)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self.zap is not None:
            self.zap.close()
        self.socket.close(linger=500)


def _bind_endpoint(bind: str) -> str:
    host, _, port = bind.rpartition(":")
    if not host:
        host, port = bind, "5557"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--bind {bind!r}: use HOST:PORT, e.g. 0.0.0.0:5557")
    if host in ("0.0.0.0", "*", ""):
        host = "*"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


def run_master(options: TestOptions, bind: str, expect_workers: int, expect_timeout: float,
               heartbeat_interval: float, heartbeat_timeout: float, keys: CurveKeys | None,
               console: Any = None) -> int:
    """The whole distributed test; returns the exit code."""
    from loadgen.launch import execute, prepare

    plan, script = prepare(options)
    if keys is None and not _is_loopback(bind):
        print(f"loadgen master: warning: listening on {bind} without encryption or authentication: anyone who "
              "reaches this port can join as a worker and read the script; use --curve-secret-key and "
              "--curve-allow on untrusted networks", file=sys.stderr, flush=True)
    elif keys is not None and not keys.allowed:
        print("loadgen master: warning: CURVE encrypts the links but, without --curve-allow, any worker that "
              "knows the master's public key may join", file=sys.stderr, flush=True)
    aggregate = Aggregate()
    master = Master(bind, options, script, aggregate, heartbeat_interval, heartbeat_timeout, keys)

    def run(controller: Any) -> dict:
        master.wait_for_workers(expect_workers, expect_timeout, stop=controller.stop_requested)
        master.start_test(plan)
        report = controller.run()
        master.quit_workers()  # a worker started with --stay stays connected and waits for the next master
        return report

    return execute(options, plan, master, aggregate, run, console=console, cleanup=master.close)


def _printable(identity: bytes) -> str:
    """A peer id fit for a log line, whatever bytes it is made of."""
    text = identity.decode("utf-8", "replace")[:100]
    return "".join(c if c.isprintable() else "?" for c in text) or "?"


def _is_loopback(bind: str) -> bool:
    host = bind.rpartition(":")[0] or bind
    return host.startswith("127.") or host in ("localhost", "[::1]", "::1")
