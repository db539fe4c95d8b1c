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
    Warning_,
    Welcome,
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


class Peer:
    """One worker process as the master sees it."""

    __slots__ = ("id", "host", "processes", "last_seen", "state", "users", "cpu_percent", "hot_since",
                 "started", "final")

    def __init__(self, peer_id: str, host: str, processes: int) -> None:
        self.id = peer_id
        self.host = host
        self.processes = processes
        self.last_seen = time.monotonic()
        self.state = "idle"  # idle → starting → running → done | lost | failed
        self.users = 0
        self.cpu_percent = 0.0
        self.hot_since: float | None = None
        self.started = False
        self.final = False


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
    """Accepts workers, ships tests to them, rebalances on loss and join, merges their deltas."""

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
        self.peers: dict[str, Peer] = {}
        self.deltas: list[tuple[str, StatsDelta]] = []
        self.bad_frames = 0
        self.users_target = 0
        self.spawn_rate = 1.0
        self.rate: float | None = None
        self.plan: TestPlan | None = None
        self.context = zmq.Context()
        self.zap: ZapHandler | None = None
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.socket.setsockopt(zmq.RCVHWM, 10000)
        self.socket.setsockopt(zmq.SNDHWM, 10000)
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
        self._greenlets = [gevent.spawn(self._receive_loop), gevent.spawn(self._heartbeat_loop)]
        self._pending_warnings: list[tuple[str, str, str]] = []

    # ---- transport ---------------------------------------------------------------------------------------
    def send(self, peer_id: str, message: Message) -> None:
        try:
            self.socket.send_multipart([peer_id.encode(), encode(message)], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", peer_id, exc)

    def _receive_loop(self) -> None:
        sock = self.socket
        while True:
            try:
                frames = sock.recv_multipart()
            except zmq.ZMQError:
                return
            if len(frames) != 2:
                self.bad_frames += 1
                continue
            try:
                peer_id = frames[0].decode("utf-8")
                message = decode(frames[1])
            except (ProtocolError, UnicodeDecodeError):
                self.bad_frames += 1
                continue
            try:
                self._handle(peer_id, message)
            except Exception:  # noqa: BLE001 - a frame must never kill the master
                self.bad_frames += 1
                log.debug("error handling %s from %s", message.type, peer_id, exc_info=True)

    def _heartbeat_loop(self) -> None:
        while True:
            for peer in list(self.peers.values()):
                if peer.state not in ("lost", "done", "failed"):
                    self.send(peer.id, MasterHeartbeat(test_id=self.test_id))
            gevent.sleep(self.heartbeat_interval)

    # ---- messages ----------------------------------------------------------------------------------------
    def _handle(self, peer_id: str, message: Message) -> None:
        if isinstance(message, Hello):
            self._hello(peer_id, message)
            return
        peer = self.peers.get(peer_id)
        if peer is None:
            return  # not introduced (e.g. a worker of a previous master): it re-introduces itself
        peer.last_seen = time.monotonic()
        if isinstance(message, Heartbeat):
            peer.users = message.users
            peer.cpu_percent = message.cpu_percent
            if peer.state == "lost":
                peer.state = "idle"
        elif isinstance(message, Stats):
            if message.test_id == self.test_id and peer.state != "lost":
                self.deltas.append((peer_id, StatsDelta.from_dict(message.delta)))
                if message.final:
                    peer.final = True
                    peer.state = "done"
        elif isinstance(message, Started):
            self._started(peer, message)
        elif isinstance(message, Warning_):
            self._pending_warnings.append((message.kind, message.message, message.key or message.message))
        elif isinstance(message, Bye):
            if peer.state not in ("done", "lost"):
                peer.state = "done" if peer.final else "left"

    def _hello(self, peer_id: str, hello: Hello) -> None:
        if hello.version != PROTOCOL_VERSION:
            reason = (f"protocol version {hello.version} does not match the master's {PROTOCOL_VERSION}: "
                      "install the same loadgen version on the master and every worker")
            print(f"loadgen master: refused worker {peer_id} from {hello.host}: {reason}", file=sys.stderr, flush=True)
            self.send(peer_id, Reject(reason=reason))
            self.aggregate.warn("worker", f"refused worker {peer_id}: {reason}", key=f"version:{peer_id}")
            return
        peer = self.peers.get(peer_id)
        if peer is None:
            peer = self.peers[peer_id] = Peer(peer_id, hello.host, hello.processes)
            log.info("worker %s joined from %s", peer_id, hello.host)
        peer.last_seen = time.monotonic()
        self.send(peer_id, Welcome(version=PROTOCOL_VERSION, master_id=self.master_id))
        if self.test_id and peer.state in ("idle", "lost"):
            self._start_peer(peer)

    def _started(self, peer: Peer, message: Started) -> None:
        if message.test_id != self.test_id:
            return
        if not message.ok:
            peer.state = "failed"
            self._pending_warnings.append(("worker", f"worker {peer.id} could not start: {message.error}",
                                           f"failed:{peer.id}"))
            self.start_errors.append(message.error)
            return
        peer.started = True
        peer.state = "running"
        row = self.aggregate.add_worker(peer.id, peer.host, peer.processes)
        row.state = "running"
        self._rebalance()

    # ---- the fleet seen by the controller ----------------------------------------------------------------
    def active(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.state == "running"]

    def wait_for_workers(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        announced = -1
        while True:
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
            gevent.sleep(0.1)

    def start_test(self, plan: TestPlan, timeout: float = 60.0) -> None:
        """Ship the test to every connected worker and wait until each has loaded it."""
        self.plan = plan
        self.test_id = uuid.uuid4().hex
        self.start_errors: list[str] = []
        for peer in list(self.peers.values()):
            if peer.state == "idle":
                self._start_peer(peer)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            starting = [p for p in self.peers.values() if p.state == "starting"]
            if not starting:
                break
            gevent.sleep(0.05)
        if not self.active():
            detail = self.start_errors[0] if self.start_errors else "no worker answered in time"
            raise ScriptError(f"no worker could start the test: {detail}")

    def _start_peer(self, peer: Peer) -> None:
        peer.state = "starting"
        peer.final = False
        peer.started = False
        self.send(peer.id, Start(test_id=self.test_id, options=self.options.to_dict(),
                                 script_name=self.script_name, script_files=self.script_files))

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
            for peer_id in ids:
                self.send(peer_id, Rate(test_id=self.test_id, rate=shares[peer_id], max_users=max(1, pools[peer_id]),
                                        pre_allocate=pre[peer_id]))
            return
        classes = self.script.user_classes
        weights = {name: cls.weight for name, cls in classes.items()}
        fixed = {name: cls.fixed_count for name, cls in classes.items()}
        counts = class_counts(self.users_target, weights, fixed)
        per_worker = assign(ids, counts)
        total = max(1, self.users_target)
        for peer_id in ids:
            share = sum(per_worker[peer_id].values())
            rate = max(self.spawn_rate * share / total, 0.01)
            self.send(peer_id, Target(test_id=self.test_id, counts=per_worker[peer_id], spawn_rate=rate))

    def collect(self) -> list[tuple[str, StatsDelta]]:
        deltas, self.deltas = self.deltas, []
        return deltas

    def check(self, aggregate: Aggregate) -> None:
        now = time.monotonic()
        lost = False
        for peer in self.peers.values():
            if peer.state in ("running", "starting", "idle") and now - peer.last_seen > self.heartbeat_timeout:
                was_running = peer.state == "running"
                peer.state = "lost"
                row = aggregate.workers.get(peer.id)
                if row is not None:
                    row.state = "lost"
                aggregate.warn("worker", f"worker {peer.id} ({peer.host}) lost: silent for "
                               f"{now - peer.last_seen:.1f} s; its users go to the other workers", key=f"lost:{peer.id}")
                lost = lost or was_running
            row = aggregate.workers.get(peer.id)
            if row is not None and peer.state == "running":
                row.cpu_percent = peer.cpu_percent
                if peer.cpu_percent > CPU_WARN_PERCENT:
                    peer.hot_since = peer.hot_since or now
                    if now - peer.hot_since >= CPU_WARN_SECONDS:
                        aggregate.warn("cpu", f"worker {peer.id} ({peer.host}) above {CPU_WARN_PERCENT:.0f}% CPU "
                                       f"for {CPU_WARN_SECONDS} s: its numbers may measure itself; add workers",
                                       key=f"cpu:{peer.id}")
                else:
                    peer.hot_since = None
        if lost:
            self._rebalance()
        for kind, message, key in self._pending_warnings:
            aggregate.warn(kind, message, key=key)
        self._pending_warnings.clear()

    def stop(self, timeout: float) -> None:
        """Stop every worker and wait for its final delta (or its loss)."""
        for peer in self.peers.values():
            if peer.state in ("running", "starting"):
                self.send(peer.id, Stop(test_id=self.test_id, timeout=timeout))
        deadline = time.monotonic() + timeout + self.heartbeat_timeout + 2.0
        while time.monotonic() < deadline:
            waiting = [p for p in self.peers.values() if p.started and not p.final and p.state not in ("lost", "left")]
            if not waiting:
                break
            for peer in waiting:
                if time.monotonic() - peer.last_seen > self.heartbeat_timeout:
                    peer.state = "lost"
            gevent.sleep(0.05)
        for peer in self.peers.values():
            row = self.aggregate.workers.get(peer.id)
            if row is not None:
                row.state = "lost" if peer.state == "lost" else "done"
        if self.bad_frames:
            self.aggregate.warn("protocol", f"dropped {self.bad_frames} malformed or unknown frames", key="frames")

    def quit_workers(self) -> None:
        for peer in self.peers.values():
            if peer.state not in ("lost",):
                self.send(peer.id, Quit(reason="master exiting"))

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
    import socket as _socket

    from loadgen.controller import Controller
    from loadgen.outputs import ConsoleOutput, write_reports
    from loadgen.outputs.live import attach_outputs
    from loadgen.script import load_script

    options.validate()
    plan = options.plan()
    script = load_script(options.file or "", options.user_classes)
    plan.shape = script.shape if not options.stages else None
    if keys is None and not _is_loopback(bind):
        print("loadgen master: warning: workers connect without encryption or authentication; "
              "use --curve-secret-key and --curve-allow on untrusted networks", file=sys.stderr, flush=True)
    aggregate = Aggregate()
    master = Master(bind, options, script, aggregate, heartbeat_interval, heartbeat_timeout, keys)
    console = console or ConsoleOutput(quiet=options.quiet)
    controller = Controller(plan, master, aggregate, on_snapshot=console.on_snapshot)
    controller.options = options.for_report()  # type: ignore[attr-defined]
    controller.install_signal_handlers()
    del _socket
    outputs = attach_outputs(controller, options)
    try:
        waiter = gevent.spawn(master.wait_for_workers, expect_workers, expect_timeout)
        while not waiter.ready():
            if controller.stop_requested.wait(0.1):
                waiter.kill()
                raise UsageError("stopped before the workers connected")
        waiter.get()
        master.start_test(plan)
        report = controller.run()
        master.quit_workers() if not options.extra.get("workers_stay") else None
    finally:
        master.close()
        outputs.close()
    write_reports(report, json_path=options.json_path, csv_prefix=options.csv_prefix, html_path=options.html_path,
                  junit_path=options.junit_path)
    outputs.on_report(report)
    console.on_report(report)
    return controller.exit_code(report)


def _is_loopback(bind: str) -> bool:
    host = bind.rpartition(":")[0] or bind
    return host.startswith("127.") or host in ("localhost", "[::1]", "::1")
