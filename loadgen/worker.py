"""``loadgen worker``: one DEALER peer of the master; runs the users the master asks for."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from typing import Any

import gevent
import zmq.green as zmq
from gevent.event import Event

from loadgen import __version__
from loadgen.environment import Environment
from loadgen.errors import LoadgenError, UsageError
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
    decode,
    encode,
)
from loadgen.script import Script, load_script
from loadgen.security import CurveKeys

log = logging.getLogger("loadgen.worker")
DEFAULT_PORT = 5557


def parse_master_address(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[v6]:PORT``."""
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        end = text.find("]")
        host = text[1:end]
        rest = text[end + 1:]
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    if not host:
        raise UsageError(f"--master {text!r} has no host: use e.g. --master 10.0.1.5 or 10.0.1.5:5557")
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"--master {whole!r} has a bad port: use HOST:PORT with a port from 1 to 65535")
    return int(text)


class Worker:
    """Connects to a master, runs tests it is given, streams deltas every second."""

    def __init__(self, master: str, script_path: str | None = None, heartbeat_interval: float = 1.0,
                 master_timeout: float = 10.0, stay: bool = False, keys: CurveKeys | None = None,
                 worker_id: str | None = None) -> None:
        host, port = parse_master_address(master)
        self.endpoint = f"tcp://{'[' + host + ']' if ':' in host else host}:{port}"
        self.script_path = script_path
        self.heartbeat_interval = heartbeat_interval
        self.master_timeout = master_timeout
        self.stay = stay
        self.keys = keys
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.context = zmq.Context()
        self.socket: Any = None
        self.welcomed = False
        self.last_master = time.monotonic()
        self.env: Environment | None = None
        self.test_id = ""
        self.state = "idle"
        self._script_dir: str | None = None
        self._done = Event()
        self.exit_code = 0
        self._greenlets: list[gevent.Greenlet] = []
        self._stats_greenlet: gevent.Greenlet | None = None

    # ---- transport ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RCVHWM, 1000)
        sock.setsockopt(zmq.IDENTITY, self.worker_id.encode())
        if self.keys is not None:
            self.keys.apply_client(sock)
        sock.connect(self.endpoint)
        self.socket = sock

    def send(self, message: Message) -> None:
        try:
            self.socket.send(encode(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # the master is away; heartbeats resume when it is back
        except zmq.ZMQError as exc:
            log.debug("send failed: %s", exc)

    # ---- main loop ---------------------------------------------------------------------------------------
    def run(self) -> int:
        self._connect()
        print(f"loadgen worker {self.worker_id} connecting to {self.endpoint}", file=sys.stderr, flush=True)
        self._greenlets = [gevent.spawn(self._receive_loop), gevent.spawn(self._heartbeat_loop)]
        try:
            self._done.wait()
        finally:
            self._shutdown()
        return self.exit_code

    def request_quit(self, code: int = 0) -> None:
        self.exit_code = code
        self._done.set()

    def _hello(self) -> Hello:
        return Hello(version=PROTOCOL_VERSION, worker_id=self.worker_id, host=socket.gethostname(),
                     pid=os.getpid(), has_script=self.script_path is not None, loadgen_version=__version__)

    def _heartbeat_loop(self) -> None:
        while not self._done.is_set():
            if not self.welcomed:
                self.send(self._hello())
            else:
                users = self.env.runner.user_count if self.env is not None else 0
                cpu = self.env.monitor.cpu_percent if self.env is not None else 0.0
                rss = self.env.monitor.rss_mb if self.env is not None else 0.0
                self.send(Heartbeat(state=self.state, users=users, cpu_percent=cpu, rss_mb=rss))
                if time.monotonic() - self.last_master > self.master_timeout:
                    self._master_lost()
            gevent.sleep(self.heartbeat_interval)

    def _master_lost(self) -> None:
        print(f"loadgen worker {self.worker_id}: no word from the master for {self.master_timeout:g} s; "
              "users stopped, reconnecting", file=sys.stderr, flush=True)
        self.welcomed = False
        self._end_test(timeout=0.0, send_final=False)
        self._connect()

    def _receive_loop(self) -> None:
        while not self._done.is_set():
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
            except ProtocolError as exc:
                log.warning("dropped a malformed frame from the master: %s", exc)
                continue
            self.last_master = time.monotonic()
            try:
                self._handle(message)
            except Exception as exc:  # noqa: BLE001 - report to the master, keep running
                log.exception("error handling %s", message.type)
                self.send(Warning_(kind="worker", message=f"{self.worker_id}: {type(exc).__name__}: {exc}"))

    def _handle(self, message: Message) -> None:
        if message.type == "welcome":
            if not self.welcomed:
                print(f"loadgen worker {self.worker_id}: joined the master", file=sys.stderr, flush=True)
            self.welcomed = True
        elif isinstance(message, Reject):
            print(f"loadgen: error: the master refused this worker: {message.reason}", file=sys.stderr, flush=True)
            self.request_quit(2)
        elif isinstance(message, Start):
            self._start(message)
        elif isinstance(message, Target):
            if self.env is not None and message.test_id == self.test_id:
                self.env.runner.set_target(message.counts, message.spawn_rate)
        elif isinstance(message, Rate):
            if self.env is not None and message.test_id == self.test_id:
                self.env.runner.set_rate(message.rate, max(1, message.max_users), message.pre_allocate)
        elif isinstance(message, Stop):
            if message.test_id == self.test_id:
                gevent.spawn(self._stop, message.timeout)
        elif isinstance(message, Quit):
            self._end_test(timeout=0.0, send_final=True)
            self.request_quit(0)
        elif isinstance(message, MasterHeartbeat):
            if not self.welcomed:
                self.send(self._hello())

    # ---- a test ------------------------------------------------------------------------------------------
    def _start(self, message: Start) -> None:
        if self.env is not None:
            self._end_test(timeout=0.0, send_final=True)
        self.test_id = message.test_id
        try:
            options = TestOptions.from_dict(message.options)
            script = self._load_script(message, options)
            self.env = Environment(script.user_classes, options, open_model=options.arrival_rate is not None,
                                   worker_id=self.worker_id)
            plan = options.plan()
            for kind, text, key in self.env.preflight(plan):
                self._warn(kind, text, key)
        except LoadgenError as exc:
            self.env = None
            self.send(Started(test_id=message.test_id, ok=False, error=str(exc)))
            return
        self.state = "running"
        self.env.recorder.flush()  # counters start from here
        self.send(Started(test_id=message.test_id))
        self._stats_greenlet = gevent.spawn(self._stats_loop, self.env, message.test_id)

    def _load_script(self, message: Start, options: TestOptions) -> Script:
        if self.script_path is not None:
            return load_script(self.script_path, options.user_classes)
        if not message.script_files:
            raise UsageError("the master sent no script and this worker has none: start it with -f")
        self._script_dir = tempfile.mkdtemp(prefix="loadgen-script-")
        for rel, content in message.script_files.items():
            rel_path = os.path.normpath(rel)
            if rel_path.startswith("..") or os.path.isabs(rel_path):
                raise UsageError(f"the master sent a script file outside its folder: {rel!r}")
            path = os.path.join(self._script_dir, rel_path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(content)
        return load_script(os.path.join(self._script_dir, message.script_name), options.user_classes,
                           module_name=f"loadgen_shipped_{message.test_id[:8]}")

    def _warn(self, kind: str, message: str, key: str) -> None:
        self.send(Warning_(kind=kind, message=message, key=key))

    def _stats_loop(self, env: Environment, test_id: str) -> None:
        next_send = time.monotonic() + 1.0
        while self.env is env:
            gevent.sleep(max(0.0, next_send - time.monotonic()))
            next_send += 1.0
            if self.env is not env:
                return
            delta = env.flush()
            self.send(Stats(test_id=test_id, delta=delta.to_dict()))
            for kind, text, key in env.check(label=f"worker {self.worker_id}"):
                self._warn(kind, text, key)

    def _stop(self, timeout: float) -> None:
        self._end_test(timeout=timeout, send_final=True)
        if not self.stay:
            self.send(Bye(reason="test finished"))
            gevent.sleep(0.2)
            self.request_quit(0)

    def _end_test(self, timeout: float, send_final: bool) -> None:
        env = self.env
        if env is None:
            return
        self.state = "stopping"
        env.stop(timeout)
        self.env = None
        if self._stats_greenlet is not None:
            self._stats_greenlet.kill(block=False)
        delta = env.flush()
        env.close()
        if send_final:
            self.send(Stats(test_id=self.test_id, delta=delta.to_dict(), final=True))
        self.state = "idle"
        if self._script_dir:
            shutil.rmtree(self._script_dir, ignore_errors=True)
            self._script_dir = None

    def _shutdown(self) -> None:
        self._end_test(timeout=0.0, send_final=True)
        gevent.sleep(0.1)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self.socket is not None:
            self.socket.close(linger=200)
