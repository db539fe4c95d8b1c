"""Helpers for the distributed tests: real ``loadgen master`` / ``loadgen worker`` processes on 127.0.0.1, and
fake workers/masters speaking the protocol from plain ZeroMQ sockets.

Every process is started through a ``Fleet``, which kills it (and its children) at teardown.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import zmq

from loadgen.fleet.keyring import KEYS_ENV, create_fleet
from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    FrameError,
    Heartbeat,
    Hello,
    Message,
    Start,
    Started,
    Stats,
    Stop,
    Target,
    decode,
    encode,
)
from loadgen.stats.recorder import StatsDelta
from loadgen.stats.wire import encode_delta

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """\
from loadgen import HttpUser, task, constant


class Browser(HttpUser):
    weight = 1
    wait_time = constant({wait})

    @task
    def home(self):
        self.client.get("/")


class Buyer(HttpUser):
    weight = 1
    wait_time = constant({wait})

    @task
    def cart(self):
        self.client.get("/bytes/10", name="/cart")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_script(directory: Path, wait: float = 0.05, name: str = "script.py") -> Path:
    path = directory / name
    path.write_text(SCRIPT.format(wait=wait))
    return path


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


class Proc:
    """A loadgen process whose stdout/stderr go to files (read them any time)."""

    def __init__(self, name: str, argv: list[str], directory: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.out_path = directory / f"{name}.out"
        self.err_path = directory / f"{name}.err"
        self._out = open(self.out_path, "wb")  # noqa: SIM115 - closed in kill()
        self._err = open(self.err_path, "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(argv, stdout=self._out, stderr=self._err, cwd=directory, env=env)
        self.pid = self.popen.pid

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout:g} s; stderr:\n{self.stderr()[-3000:]}") \
                from None

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> re.Match[str]:
        """Wait until stderr matches ``pattern`` (``count`` times); returns the last match."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            matches = list(regex.finditer(self.stderr()))
            return matches[count - 1] if len(matches) >= count else None

        try:
            return wait_until(found, timeout, what=f"{pattern!r} in {self.name}'s stderr")
        except AssertionError:
            raise AssertionError(f"{pattern!r} not in {self.name}'s stderr within {timeout:g} s "
                                 f"(exit {self.poll()}):\n{self.stderr()[-3000:]}") from None

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        procs = self.children()
        if self.poll() is None:
            self.popen.kill()
        for child in procs:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        psutil.wait_procs(procs, timeout=5)
        self._out.close()
        self._err.close()


class Fleet:
    """Starts masters and workers in ``directory``; ``close()`` kills every one of them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.procs: list[Proc] = []
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), self.env.get("PYTHONPATH", "")) if p)
        # secure by default, as users run it: the master and the workers find their parts of one fleet's keys
        self.keys = directory / "fleet-keys"
        if not self.keys.exists():
            create_fleet(str(self.keys))
        self.env[KEYS_ENV] = str(self.keys)
        self._count = 0

    def start(self, name: str, *args: str) -> Proc:
        self._count += 1
        proc = Proc(f"{self._count:02d}-{name}", [sys.executable, "-m", "loadgen", *args], self.directory, self.env)
        self.procs.append(proc)
        return proc

    def master(self, script: Path | str, host: str, *args: str, port: int, bind: str = "127.0.0.1",
               json_name: str = "report.json", expect: int = 1) -> Proc:
        return self.start("master", "master", "-f", str(script), "-H", host, "--bind", f"{bind}:{port}",
                          "--expect-workers", str(expect), "--json", json_name, "-q", *args)

    def worker(self, port: int, *args: str) -> Proc:
        return self.start("worker", "worker", "--master", f"127.0.0.1:{port}", *args)

    def report(self, json_name: str = "report.json") -> dict:
        return json.loads((self.directory / json_name).read_text())

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()


def worker_pids(master: Proc) -> dict[str, int]:
    """``worker id → pid`` of the workers a master announced (ids are ``HOST-PID-TAG``: TAG is the key's id
    suffix with CURVE, else random)."""
    found = re.findall(r"worker (\S+-(\d+)-[0-9a-f]{4,12}) joined", master.stderr())
    return {worker_id: int(pid) for worker_id, pid in found}


# ---- raw protocol peers ------------------------------------------------------------------------------------
class FakeWorker:
    """A worker made of a plain DEALER socket: says hello, answers Start, heartbeats, records Targets.

    Runs in a thread; ``silent`` stops its heartbeats (as if killed), ``deltas`` are sent once a second.
    """

    def __init__(self, context: zmq.Context, port: int, identity: str, cpu_percent: float = 0.0) -> None:
        self.identity = identity
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, identity.encode())
        self.socket.connect(f"tcp://127.0.0.1:{port}")
        self.cpu_percent = cpu_percent
        self.received: list[Message] = []
        self.targets: list[Target] = []
        self.test_id = ""
        self.silent = False
        self.stopped = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> FakeWorker:
        self._thread.start()
        return self

    def send(self, message: Message) -> None:
        with self._lock:
            self.socket.send(encode(message))

    def _run(self) -> None:
        self.send(Hello(version=PROTOCOL_VERSION, worker_id=self.identity, host="fake", session=self.identity))
        next_beat = time.monotonic()
        while not self._closing.is_set():
            now = time.monotonic()
            if now >= next_beat and not self.silent:
                next_beat = now + 0.5
                users = sum(self.targets[-1].counts.values()) if self.targets else 0
                self.send(Heartbeat(state="running" if self.test_id else "idle", users=users,
                                    cpu_percent=self.cpu_percent, test_id=self.test_id))
            with self._lock:
                ready = self.socket.poll(50)
                frame = self.socket.recv(zmq.NOBLOCK) if ready else None
            if frame is None:
                continue
            try:
                message = decode(frame)
            except FrameError:
                continue
            self.received.append(message)
            if self.silent:
                continue
            if isinstance(message, Start):
                self.test_id = message.test_id
                self.send(Started(test_id=message.test_id))
            elif isinstance(message, Target):
                self.targets.append(message)
            elif isinstance(message, Stop):
                self.send(Stats(test_id=message.test_id, delta=empty_delta(), final=True))
                self.stopped.set()

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)
        self.socket.close(0)


def empty_delta() -> dict:
    delta = StatsDelta()
    delta.t = time.time()
    return encode_delta(delta)


def script_package(directory: Path) -> Path:
    """A script that is a package: ``__init__.py`` imports a sibling module and reads a data file."""
    package = directory / "shop"
    (package / "data").mkdir(parents=True)
    (package / "helpers.py").write_text("PATHS_FILE = 'paths.txt'\n")
    (package / "data" / "paths.txt").write_text("/status/201\n/bytes/7\n")
    (package / "__init__.py").write_text(textwrap.dedent("""\
        import os

        import helpers
        from loadgen import HttpUser, task, constant

        with open(os.path.join(os.path.dirname(__file__), "data", helpers.PATHS_FILE)) as handle:
            PATHS = handle.read().split()


        class Shopper(HttpUser):
            wait_time = constant(0.05)

            @task
            def visit(self):
                for path in PATHS:
                    self.client.get(path)
        """))
    return package


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
