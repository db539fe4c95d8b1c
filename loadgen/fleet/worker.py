"""``loadgen worker``: one DEALER peer of the master; runs the users the master asks for."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import sys
import tempfile
import time
import uuid
from enum import IntEnum
from typing import Any

import gevent
import zmq.green as zmq
from gevent.event import Event
from zmq.utils.monitor import recv_monitor_message

from loadgen import __version__
from loadgen.engine.environment import Environment
from loadgen.fleet.link import parse_master_address, worker_socket
from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    Bye,
    FrameError,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    Message,
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
    decode,
    encode,
)
from loadgen.fleet.security import CurveKeys
from loadgen.fleet.shipping import SCRIPT_DIR_PREFIX, forget_script, sweep_stale_script_dirs, unpack_script
from loadgen.model.addresses import HostPort
from loadgen.model.errors import CommandError, UsageError
from loadgen.model.options import TestOptions
from loadgen.script.loader import Script, load_script
from loadgen.stats.wire import encode_delta

log = logging.getLogger("loadgen.fleet.worker")


class SessionState(IntEnum):
    """This worker's part in a test: idle → running → stopping → idle."""

    IDLE = 0
    RUNNING = 1
    STOPPING = 2

    @property
    def label(self) -> str:
        """As heartbeats carry it to the master."""
        return self.name.lower()


class Worker:
    """Connects to a master, runs tests it is given, streams deltas every second.

    A worker that hears nothing from its master for ``master_timeout`` stops its users and keeps
    introducing itself, forever, until a master (the same one or a new one on the same address) welcomes
    it. ``stay`` only decides what happens after a test ends cleanly: exit (default) or wait for the next.
    """

    def __init__(self, master: str, script_path: str | None = None, heartbeat_interval: float = 1.0,
                 master_timeout: float = 10.0, stay: bool = False, keys: CurveKeys | None = None,
                 worker_id: str | None = None, processes: int = 1) -> None:
        host, port = parse_master_address(master)
        self.endpoint = HostPort(host, port).zmq_connect()
        self.script_path = script_path
        self.heartbeat_interval = heartbeat_interval
        self.master_timeout = master_timeout
        self.stay = stay
        self.processes = processes  # the processes of this worker's group on its machine, for the master's view
        self.keys = keys
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.context = zmq.Context()
        self.socket: Any = None
        self._monitor: Any = None
        self.welcomed = False
        self.ever_welcomed = False
        self.master_id = ""
        self.session = uuid.uuid4().hex[:12]
        self.last_master = time.monotonic()
        self.env: Environment | None = None
        self.test_id = ""
        self._state = SessionState.IDLE
        self._script_dir: str | None = None
        self._done = Event()
        self.exit_code = 0
        self._greenlets: list[gevent.Greenlet] = []
        self._stats_greenlet: gevent.Greenlet | None = None
        self._handshake_failures = 0
        self._signals = 0

    @property
    def state(self) -> SessionState:
        return self._state

    def _move(self, state: SessionState) -> None:
        """The one place this worker's test session changes state."""
        self._state = state

    # ---- transport ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._close_link(linger=0)
        self.socket, self._monitor = worker_socket(self.context, self.endpoint, self.worker_id, self.keys)

    def send(self, message: Message) -> None:
        try:
            self.socket.send(encode(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # the master is away; heartbeats resume when it is back
        except zmq.ZMQError as exc:
            log.debug("send failed: %s", exc)

    # ---- main loop ---------------------------------------------------------------------------------------
    def run(self) -> int:
        sweep_stale_script_dirs()
        self._connect()
        print(f"loadgen worker {self.worker_id} connecting to {self.endpoint}", file=sys.stderr, flush=True)
        self._greenlets = [gevent.spawn(self._receive_loop), gevent.spawn(self._heartbeat_loop)]
        if self.keys is not None:
            self._greenlets.append(gevent.spawn(self._monitor_loop))
        for signum in (signal.SIGINT, signal.SIGTERM):
            gevent.signal_handler(signum, self._on_signal, signum)
        try:
            self._done.wait()
        finally:
            self._shutdown()
        return self.exit_code

    def request_quit(self, code: int = 0) -> None:
        self.exit_code = code
        self._done.set()

    def _on_signal(self, signum: int) -> None:
        """First signal: stop users (honouring the stop timeout), flush, say bye, exit. Second: exit now."""
        self._signals += 1
        if self._signals > 1:
            self.request_quit(130)
            return
        print(f"loadgen worker {self.worker_id}: {signal.Signals(signum).name}: stopping users, flushing",
              file=sys.stderr, flush=True)
        gevent.spawn(self._leave, None)

    def _leave(self, timeout: float | None) -> None:
        if self.env is not None:
            self._end_test(timeout=self.env.options.stop_timeout if timeout is None else timeout, send_final=True)
        self.send(Bye(reason="worker exiting"))
        gevent.sleep(0.2)
        self.request_quit(self.exit_code)

    def _hello(self) -> Hello:
        return Hello(version=PROTOCOL_VERSION, worker_id=self.worker_id, host=socket.gethostname(),
                     pid=os.getpid(), processes=self.processes, has_script=self.script_path is not None,
                     loadgen_version=__version__,
                     session=self.session)

    def _heartbeat_loop(self) -> None:
        while not self._done.is_set():
            if not self.welcomed:
                self.send(self._hello())
            else:
                env = self.env
                users = env.runner.user_count if env is not None else 0
                cpu = env.monitor.cpu_percent if env is not None else 0.0
                rss = env.monitor.rss_mb if env is not None else 0.0
                self.send(Heartbeat(state=self._state.label, users=users, cpu_percent=cpu, rss_mb=rss,
                                    test_id=self.test_id if env is not None else ""))
            gevent.sleep(self.heartbeat_interval)

    def _check_master(self) -> None:
        if self.welcomed and time.monotonic() - self.last_master > self.master_timeout:
            print(f"loadgen worker {self.worker_id}: no word from the master for {self.master_timeout:g} s; "
                  "users stopped, reconnecting", file=sys.stderr, flush=True)
            self._forget_master(reconnect=True)

    def _forget_master(self, reconnect: bool) -> None:
        """The master is gone (or another one answers): drop the test and introduce ourselves again."""
        self.welcomed = False
        self.master_id = ""
        self.session = uuid.uuid4().hex[:12]
        self._end_test(timeout=0.0, send_final=not reconnect)
        if reconnect:
            self._connect()
            self.send(self._hello())
        self.last_master = time.monotonic()  # else the heartbeat loop introduces us within a beat

    def _receive_loop(self) -> None:
        while not self._done.is_set():
            self._check_master()
            sock = self.socket
            try:
                if not sock.poll(200):
                    continue
                frame = sock.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                continue
            except zmq.ZMQError:
                gevent.sleep(0.1)
                continue
            try:
                message = decode(frame)
            except VersionMismatch as exc:
                self._refused(f"the master speaks protocol version {exc.version}, this worker "
                              f"{PROTOCOL_VERSION}: install the same loadgen version on the master and every worker")
                continue
            except FrameError as exc:
                log.warning("dropped a malformed frame from the master: %s", exc)
                continue
            self.last_master = time.monotonic()
            try:
                self._handle(message)
            except Exception as exc:  # noqa: BLE001 - report to the master, keep running
                log.exception("error handling %s", message.type)
                self.send(Warning_(kind="worker", message=f"{self.worker_id}: {type(exc).__name__}: {exc}"))

    def _monitor_loop(self) -> None:
        """CURVE: say clearly when the master refuses our key (or we have the wrong master key)."""
        while not self._done.is_set():
            monitor = self._monitor
            if monitor is None:
                gevent.sleep(0.2)
                continue
            try:
                if not monitor.poll(200):
                    continue
                event = recv_monitor_message(monitor, flags=zmq.NOBLOCK)
            except (zmq.ZMQError, ValueError):
                gevent.sleep(0.2)
                continue
            kind = event["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshake_failures = 0
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._refused("the master refused this worker's CURVE key: copy this worker's public .key file "
                              "into the master's --curve-allow directory and restart the master")
            else:
                self._handshake_failures += 1
                if self._handshake_failures >= 3 and not self.ever_welcomed:
                    self._refused("the CURVE handshake with the master failed 3 times: check that "
                                  "--curve-master-key is the master's public key and that the master uses CURVE")

    def _refused(self, reason: str) -> None:
        print(f"loadgen: error: {reason}", file=sys.stderr, flush=True)
        self.request_quit(2)

    def _handle(self, message: Message) -> None:
        if isinstance(message, Welcome):
            if not self.welcomed:
                print(f"loadgen worker {self.worker_id}: joined the master", file=sys.stderr, flush=True)
            self.welcomed = self.ever_welcomed = True
            self.master_id = message.master_id
        elif isinstance(message, Reject):
            self._refused(f"the master refused this worker: {message.reason}")
        elif isinstance(message, Start):
            self._start(message)
        elif isinstance(message, Target):
            if self.env is not None and message.test_id == self.test_id:
                self.env.runner.set_target(message.counts, message.spawn_rate)
        elif isinstance(message, Rate):
            if self.env is not None and message.test_id == self.test_id:
                self.env.runner.set_rate(message.rate, max(1, message.max_users), message.pre_allocate)
        elif isinstance(message, Stop):
            if message.test_id != self.test_id:
                return
            if self._state == SessionState.STOPPING:  # a second Stop (a second Ctrl-C on the master): no more waiting
                if message.timeout <= 0 and self.env is not None:
                    force = getattr(self.env.runner, "force_stop", None)
                    if force is not None:
                        force()
                return
            self._move(SessionState.STOPPING)
            gevent.spawn(self._stop, message.timeout)
        elif isinstance(message, Quit):
            if self.stay:
                print(f"loadgen worker {self.worker_id}: the master exited ({message.reason}); waiting for the "
                      "next one", file=sys.stderr, flush=True)
                gevent.spawn(self._forget_master, False)
            else:
                gevent.spawn(self._leave, 0.0)
        elif isinstance(message, MasterHeartbeat):
            if self.welcomed and message.master_id and self.master_id and message.master_id != self.master_id:
                print(f"loadgen worker {self.worker_id}: a new master answers on {self.endpoint}; rejoining",
                      file=sys.stderr, flush=True)
                self._forget_master(reconnect=False)
            elif not self.welcomed:
                self.send(self._hello())

    # ---- a test ------------------------------------------------------------------------------------------
    def _start(self, message: Start) -> None:
        if self.env is not None:
            self._end_test(timeout=0.0, send_final=True)
        self.test_id = message.test_id
        try:
            options = TestOptions.from_dict(message.options)
            # in a helper thread: this loop goes on (heartbeats keep flowing) while a slow script imports
            script = gevent.get_hub().threadpool.apply(self._load_script, (message, options))
            self.env = Environment(script.user_classes, options, open_model=options.arrival_rate is not None,
                                   watch_cpu=False,
                                   worker_id=self.worker_id)
            plan = options.plan()
            for kind, text, key in self.env.preflight(plan):
                self._warn(kind, text, key)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the master's to report
            self.env = None
            self._clean_script()
            error = str(exc) if isinstance(exc, CommandError) else f"{type(exc).__name__}: {exc}"
            print(f"loadgen worker {self.worker_id}: cannot start the test: {error}", file=sys.stderr, flush=True)
            self.send(Started(test_id=message.test_id, ok=False, error=error))
            return
        self._move(SessionState.RUNNING)
        self.env.recorder.flush()  # counters start from here
        self.send(Started(test_id=message.test_id))
        self._stats_greenlet = gevent.spawn(self._stats_loop, self.env, message.test_id)

    def _load_script(self, message: Start, options: TestOptions) -> Script:
        if self.script_path is not None:
            return load_script(self.script_path, options.user_classes)
        if not message.script_files:
            raise UsageError("the master sent no script and this worker has none: start it with -f")
        self._script_dir = tempfile.mkdtemp(prefix=f"{SCRIPT_DIR_PREFIX}{os.getpid()}-")
        path = unpack_script(self._script_dir, message.script_files, message.script_name)
        return load_script(path, options.user_classes, module_name=f"loadgen_shipped_{message.test_id[:8]}")

    def _clean_script(self) -> None:
        """Forget a shipped script: its folder, its sys.path entry and the modules imported from it (a worker
        that stays may get another version of the same files next time)."""
        folder, self._script_dir = self._script_dir, None
        if folder:
            forget_script(folder)

    def _warn(self, kind: str, message: str, key: str) -> None:
        self.send(Warning_(kind=kind, message=message, key=key))

    def _stats_loop(self, env: Environment, test_id: str) -> None:
        # Every worker gets Start within milliseconds of the others: a random phase keeps a large fleet from
        # sending its deltas in one burst each second (the master merges them as they come, one by one).
        next_send = time.monotonic() + random.uniform(0.2, 1.0)
        while self.env is env:
            gevent.sleep(max(0.0, next_send - time.monotonic()))
            next_send += 1.0
            if self.env is not env:
                return
            delta = env.flush()
            self.send(Stats(test_id=test_id, delta=encode_delta(delta)))
            for notice in env.check(label=f"worker {self.worker_id}"):
                self._warn(notice.kind, notice.message, notice.key)

    def _stop(self, timeout: float) -> None:
        self._end_test(timeout=timeout, send_final=True)
        if not self.stay:
            self.send(Bye(reason="test finished"))
            gevent.sleep(0.2)
            self.request_quit(0)

    def _end_test(self, timeout: float, send_final: bool) -> None:
        env = self.env
        if env is None:
            self._move(SessionState.IDLE)
            return
        self._move(SessionState.STOPPING)
        if self._stats_greenlet is not None:
            self._stats_greenlet.kill(block=False)
            self._stats_greenlet = None
        try:
            env.stop(timeout)
        finally:
            if self.env is env:
                self.env = None
            delta = env.flush()
            env.close()
            if send_final:
                self.send(Stats(test_id=self.test_id, delta=encode_delta(delta), final=True))
            self._move(SessionState.IDLE)
            self._clean_script()

    def _shutdown(self) -> None:
        self._end_test(timeout=0.0, send_final=True)
        gevent.sleep(0.1)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self._close_link(linger=200)

    def _close_link(self, linger: int) -> None:
        """Close the DEALER socket (and its CURVE monitor), letting queued frames go for ``linger`` ms."""
        if self._monitor is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        if self.socket is not None:
            self.socket.close(linger=linger)
