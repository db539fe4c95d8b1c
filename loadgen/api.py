"""Embedding API: run a load test from another Python application without importing gevent.

    import loadgen.api

    handle = loadgen.api.start(script="locustfile.py", host="http://127.0.0.1:8080", users=10,
                               spawn_rate=5, run_time="30s")
    for snapshot in handle.stream():        # one dict a second until the test ends
        if snapshot["elapsed"] > 10:
            handle.set_users(20)
    code = handle.wait(timeout=60)          # the exit code of ``loadgen run``
    report = handle.report()                # the loadgen.report/1 dict

The test runs in a ``python -m loadgen run`` subprocess (its own gevent hub); this module talks to it over
the ZeroMQ snapshot stream (plain blocking pyzmq) and the web API (urllib), both on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["Handle", "LoadgenError", "start"]

READY_TIMEOUT = 30.0

# keyword → CLI flag where the flag is not simply --key-with-dashes
_FLAGS = {"thresholds": "--threshold", "json_path": "--json", "csv_prefix": "--csv", "html_path": "--html",
          "junit_path": "--junit", "tls_resume": "--no-tls-resume"}
_RESERVED = ("stream", "web", "web_token", "web_private", "web_cert", "web_key")


class LoadgenError(RuntimeError):
    """The test could not be started or controlled; the message includes loadgen's own error line."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _duration(value: Any) -> str:
    return f"{value}s" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def build_args(script: str | None, host: str | None, users: int | None, spawn_rate: float | None,
               run_time: Any, options: dict[str, Any]) -> list[str]:
    """``loadgen run`` arguments for the keyword options (``arrival_rate=5`` → ``--arrival-rate 5``)."""
    args: list[str] = []
    if script is not None:
        args += ["-f", os.fspath(script)]
    if host is not None:
        args += ["-H", host]
    if users is not None:
        args += ["-u", str(users)]
    if spawn_rate is not None:
        args += ["-r", str(spawn_rate)]
    if run_time is not None:
        args += ["-t", _duration(run_time)]
    classes: Sequence[str] = ()
    for key, value in options.items():
        if key in _RESERVED:
            raise TypeError(f"{key!r} is set by loadgen.api itself")
        if key == "user_classes":
            classes = [value] if isinstance(value, str) else list(value)
            continue
        flag = _FLAGS.get(key, "--" + key.replace("_", "-"))
        if key == "tls_resume":
            if value is False:
                args.append(flag)
            continue
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                args += [flag, str(item)]
        elif key in ("stop_timeout", "stall_timeout"):
            args += [flag, _duration(value)]
        else:
            args += [flag, str(value)]
    return args + list(classes)


class Handle:
    """A running (or finished) test started by :func:`start`."""

    def __init__(self, proc: subprocess.Popen[bytes], stream_address: str, web_url: str, json_path: str,
                 workdir: str, sub: Any, zmq_context: Any, web_token: str | None = None) -> None:
        self.proc = proc
        self.stream_address = stream_address
        self.web_url = web_url
        self._web_token = web_token
        self.json_path = json_path
        self.workdir = workdir
        self._sub = sub
        self._context = zmq_context
        self._report: dict | None = None
        self.snapshots_seen = 0

    # ---- live --------------------------------------------------------------------------------------------
    def stream(self, timeout: float | None = None) -> Iterator[dict]:
        """Yield each snapshot (a dict, once a second) until the test ends.

        Stops after the final report arrives, when the process has exited (and nothing more is queued), or
        after ``timeout`` seconds without a message. Snapshots published before ``start()`` returned are
        buffered, so none is missed from the beginning of the test."""
        import msgpack
        import zmq

        if self._sub is None:
            return
        poller = zmq.Poller()
        poller.register(self._sub, zmq.POLLIN)
        quiet_since = time.monotonic()
        while True:
            if poller.poll(200):
                topic, payload = self._sub.recv_multipart()
                quiet_since = time.monotonic()
                value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
                if topic == b"report":
                    self._report = value
                    return
                if topic == b"snapshot":
                    self.snapshots_seen += 1
                    yield value
                continue
            if self.proc.poll() is not None:
                return
            if timeout is not None and time.monotonic() - quiet_since > timeout:
                return

    def stats(self) -> dict:
        """The latest snapshot (``GET /api/stats``)."""
        return self._call("GET", "/api/stats")

    def set_users(self, users: int, spawn_rate: float | None = None) -> dict:
        """Closed model: change the number of users (and optionally the spawn rate)."""
        body: dict[str, Any] = {"users": int(users)}
        if spawn_rate is not None:
            body["spawn_rate"] = float(spawn_rate)
        return self._call("POST", "/api/users", body)

    def set_rate(self, rate: float) -> dict:
        """Open model: change the arrival rate (iterations per second)."""
        return self._call("POST", "/api/rate", {"rate": float(rate)})

    def stop(self) -> None:
        """Ask the test to stop (users finish their task, the report is written). Idempotent."""
        if self.proc.poll() is not None:
            return
        try:
            self._call("POST", "/api/stop", {})
        except LoadgenError:
            if self.proc.poll() is None:
                self.proc.terminate()  # the web API is gone: SIGTERM stops the test the same way

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self._web_token:
            headers["Authorization"] = f"Bearer {self._web_token}"
        request = urllib.request.Request(self.web_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                message = exc.reason
            raise LoadgenError(f"{method} {path}: {exc.code} {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LoadgenError(f"{method} {path}: the test is not reachable ({exc})") from None

    # ---- end ---------------------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int:
        """Wait for the test process; returns its exit code (0 ok, 1 failures, 2 usage, 3 script,
        4 thresholds). Raises ``subprocess.TimeoutExpired`` after ``timeout``."""
        return self.proc.wait(timeout)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def report(self, timeout: float | None = None) -> dict:
        """The final ``loadgen.report/1`` dict (waits for the test to end)."""
        if self._report is not None:
            return self._report
        code = self.wait(timeout)
        try:
            with open(self.json_path, encoding="utf-8") as handle:
                self._report = json.load(handle)
        except (OSError, ValueError):
            raise LoadgenError(f"no report: loadgen exited with {code}: {self.error_output()}") from None
        return self._report

    def output(self) -> str:
        """What ``loadgen run`` printed (stdout)."""
        return _read(os.path.join(self.workdir, "stdout.txt"))

    def error_output(self) -> str:
        """What ``loadgen run`` printed on stderr (its error line, if it failed)."""
        return _read(os.path.join(self.workdir, "stderr.txt")).strip()

    def close(self, timeout: float = 15.0) -> None:
        """Stop the test if it still runs, release the sockets and temporary files."""
        if self.proc.poll() is None:
            self.stop()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._sub is not None:
            self._sub.close(linger=0)
            self._sub = None
            self._context.term()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _web_env(env: Any) -> tuple[dict[str, str], str]:
    """The child's environment with a fresh token for its web API (so other local users cannot drive the test)
    and none of the caller's other web settings: this module talks plain HTTP to 127.0.0.1."""
    child = {k: v for k, v in env.items() if k not in ("LOADGEN_WEB_PRIVATE", "LOADGEN_WEB_CERT", "LOADGEN_WEB_KEY")}
    child["LOADGEN_WEB_TOKEN"] = token = secrets.token_urlsafe(24)
    return child, token


def start(script: str | os.PathLike[str] | None = None, host: str | None = None, users: int | None = None,
          spawn_rate: float | None = None, run_time: Any = None, *, python: str | None = None,
          cwd: str | None = None, env: dict[str, str] | None = None, ready_timeout: float = READY_TIMEOUT,
          **options: Any) -> Handle:
    """Launch ``loadgen run`` in a subprocess and return once its web API answers.

    Keyword ``options`` map onto ``loadgen run`` flags: ``arrival_rate=50`` → ``--arrival-rate 50``,
    ``thresholds=["p99<300ms"]`` → repeated ``--threshold``, ``insecure=True`` → ``--insecure``,
    ``user_classes=["Shopper"]`` → positional class names. ``quiet`` defaults to True. Raises
    :class:`LoadgenError` with loadgen's error line if it exits before it is ready (bad option, script)."""
    import zmq

    options.setdefault("quiet", True)
    workdir = tempfile.mkdtemp(prefix="loadgen-api-")
    json_path = options.pop("json_path", None) or os.path.join(workdir, "report.json")
    stream_address = f"tcp://127.0.0.1:{_free_port()}"
    web_port = _free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    args = build_args(os.fspath(script) if script is not None else None, host, users, spawn_rate, run_time,
                      options)
    cmd = [python or sys.executable, "-m", "loadgen", "run", *args, "--stream", stream_address,
           "--web", f"127.0.0.1:{web_port}", "--json", json_path]

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(stream_address)  # before the publisher binds: it reconnects until it can, so nothing is missed
    child_env, web_token = _web_env(os.environ if env is None else env)
    with open(os.path.join(workdir, "stdout.txt"), "wb") as out, open(os.path.join(workdir, "stderr.txt"), "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=child_env)
    handle = Handle(proc, stream_address, web_url, json_path, workdir, sub, context, web_token)
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            if proc.returncode in (0, 1, 4) and os.path.exists(json_path):
                return handle  # a very short test that finished before its web API was polled
            message = handle.error_output().splitlines()
            code = proc.returncode
            handle.close()
            detail = message[-1] if message else "no output"
            raise LoadgenError(f"loadgen exited with {code} before it was ready: {detail}")
        with contextlib.suppress(LoadgenError):
            handle.stats()
            return handle
        if time.monotonic() > deadline:
            handle.close(timeout=5)
            raise LoadgenError(f"loadgen did not answer on {web_url} within {ready_timeout:g} s")
        time.sleep(0.05)
