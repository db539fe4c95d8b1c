"""The real HTTP servers people load-test, on 127.0.0.1, for differential tests (``requests`` vs loadgen).

Use from a test module with ``pytest_plugins = ["real_servers"]``. Every fixture is **session-scoped**: each
server is started (as a subprocess) the first time a test asks for it and stopped at the end of the session,
so tests share it and must call ``server.clear()`` before the requests whose records they read.

=================================  =========================================================================
fixture                            server
=================================  =========================================================================
``uvicorn_server``                 ``python -m uvicorn echo_asgi:app`` (h11: httptools is not installed)
``hypercorn_server``               ``python -m hypercorn echo_asgi:app`` (asyncio worker)
``gunicorn_sync_server``           ``python -m gunicorn -k sync -w 1 echo_wsgi:app``
``gunicorn_gevent_server``         ``python -m gunicorn -k gevent -w 1 echo_wsgi:app``
``httpbin_server``                 ``python -m gunicorn -w 1 httpbin:app`` (psf httpbin, sync worker)
``nginx_server``                   nginx reverse proxy in front of its own ``gunicorn -k sync`` echo
``echo_server``                    parametrized over the five echo servers above (all but httpbin)
=================================  =========================================================================

Each helper (``Uvicorn``, ``Hypercorn``, ``GunicornSync``, ``GunicornGevent``, ``Httpbin``, ``Nginx``) has
``.url`` (``http://127.0.0.1:PORT``), ``.name``, ``.keep_alive_timeout``, ``.seen()`` (the records since the
last ``.clear()``, see ``echo_common`` for their fields) and ``.clear()``; also usable as a context manager.
Servers run from the current interpreter's environment (``sys.executable -m ...``) on a free port, are ready
once they answered one HTTP request (bounded wait; on failure the error names the command and quotes the
tail of the server's output), and are stopped with SIGTERM, then SIGKILL of their process group after
``STOP_TIMEOUT``. Every server setting is left at its default but the log level (``warning``), gunicorn's
``pre_request`` hook for the echo app (``apps/echo_gunicorn_conf.py``) and httpbin's gunicorn access log.

Keep-alive defaults, left as they are (verified in the installed sources, see each class):

- uvicorn 0.54: ``timeout_keep_alive`` 5 s.
- hypercorn 0.18: ``keep_alive_timeout`` 5 s.
- gunicorn 27.0: ``keepalive`` 2 s, used by the gevent worker; the sync worker ignores it and closes the
  connection after every response (``Connection: close``). httpbin runs on the sync worker, so the same.
- nginx 1.22: ``keepalive_timeout`` 75 s (the default of ``ngx_http_core_module``; our config sets none).

nginx: the choice was between a static server with an access log and a reverse proxy to an echo app. The
proxy is kept because it records everything the other servers record (headers in order, body) *and* nginx's
own view: ``.seen()`` gives the upstream's echo records, each with an ``"nginx"`` entry from nginx's access
log (``request``: the request line exactly as the client sent it, ``connection`` and
``connection_requests``: which client connection and its how-many-th request, ``request_length``, the
client's ``Host``/``Connection``/``Content-Length``/``Transfer-Encoding``/``Accept-Encoding`` values, ...).
What the upstream saw is what nginx forwarded, not the client's bytes: ``Host`` is passed through
(``proxy_set_header Host $http_host``), ``Connection`` is dropped (HTTP/1.1 upstream keep-alive, a
``keepalive 8`` pool, though the sync worker closes each upstream connection), a chunked request body arrives
de-chunked with a ``Content-Length`` (``proxy_request_buffering`` is on by default), and bodies over 1 MiB
get nginx's 413 (``client_max_body_size`` default). The ``X-Nginx-Request-Id`` header nginx adds to tie the
two logs together is removed from the records.

httpbin has its own routes and no echo log: its ``.seen()`` lists gunicorn's access log instead (``method``,
``path`` as received, ``http_version``, ``status``, ``client`` port; no headers or body). For headers and
body, ask httpbin itself: ``/anything`` answers with the method, url, args, headers, data, form and json it
received.
"""

from __future__ import annotations

import base64
import grp
import http.client
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import pytest
from servers import REPO, free_port, nginx_binary

APPS = Path(__file__).resolve().parent / "apps"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # until the server answers its first request
STOP_TIMEOUT = 5.0  # after SIGTERM, before SIGKILL
LOG_WAIT = 2.0  # for log lines written after the response (nginx's and gunicorn's access logs)
READY_PATH = "/__ready"  # the readiness probe; its records are left out of seen()
LOG_LEVEL = "warning"


class ServerFailed(RuntimeError):
    pass


class RealServer:
    """One server subprocess; subclasses give ``name``, ``keep_alive_timeout`` and ``command``."""

    name: ClassVar[str]
    #: seconds an idle keep-alive connection stays open by default; None: closed after every response
    keep_alive_timeout: ClassVar[float | None]
    #: what ``echo_*`` puts in the records' ``server`` field (ECHO_SERVER)
    echo_name: str

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.dir = Path(workdir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "echo.jsonl"
        self.output_path = self.dir / "server.out"  # the server's stdout and stderr
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self.echo_name = self.name

    # ---- to override ------------------------------------------------------------------------------------
    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        env = dict(os.environ, ECHO_LOG=str(self.log_path), ECHO_SERVER=self.echo_name, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APPS), str(REPO), env.get("PYTHONPATH", "")) if p)
        return env

    def parse_log_line(self, line: str) -> dict[str, Any]:
        return json.loads(line)

    # ---- interface --------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> RealServer:
        for attempt in range(3):  # a free port can be taken between free_port() and the server's bind
            self.port = free_port()
            cmd = self.command(self.port)
            with open(self.output_path, "ab") as out:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                             env=self.env(), cwd=self.dir, start_new_session=True)
            try:
                self._wait_ready(cmd)
            except ServerFailed:
                in_use = "in use" in self.output_tail().lower()
                self.stop()
                if not in_use or attempt == 2:
                    raise
                continue
            except BaseException:
                self.stop()
                raise
            break
        self.clear()
        return self

    def stop(self) -> None:
        """SIGTERM to the server, then SIGKILL to its process group (its workers) after STOP_TIMEOUT."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group is ours: start_new_session, leader unreaped
                except ProcessLookupError:
                    pass
                proc.wait(STOP_TIMEOUT)

    def clear(self) -> None:
        """Forget the records so far: ``seen()`` lists only what comes after."""
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def seen(self, expect: int = 0) -> list[dict[str, Any]]:
        """The records since the last ``clear()`` in arrival order (readiness probes left out).

        ``expect``: wait (up to LOG_WAIT) until there are at least that many; needed only for logs written
        after the response (httpbin's). The echo apps log before they answer."""
        deadline = time.monotonic() + LOG_WAIT
        while True:
            records = [r for r in self._read_log() if not r.get("path", "").startswith(READY_PATH)]
            if len(records) >= expect or time.monotonic() > deadline:
                return records
            time.sleep(0.02)

    def output_tail(self, chars: int = 3000) -> str:
        try:
            return self.output_path.read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> RealServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.url}>"

    # ---- internals --------------------------------------------------------------------------------------
    def _read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        with open(self.log_path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written is left for the next call
        return [self.parse_log_line(line) for line in complete.decode().splitlines() if line.strip()]

    def _wait_ready(self, cmd: list[str]) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.proc.returncode} before answering on "
                                   f"{HOST}:{self.port}\ncommand: {' '.join(cmd)}\n"
                                   f"output (tail):\n{self.output_tail()}")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
            try:
                conn.request("GET", READY_PATH)
                conn.getresponse().read()
                return
            except (OSError, http.client.HTTPException) as exc:
                last_error = repr(exc)
                time.sleep(0.05)
            finally:
                conn.close()
        raise ServerFailed(f"{self.name} did not answer GET {READY_PATH} on {HOST}:{self.port} within "
                           f"{START_TIMEOUT}s (last error {last_error})\ncommand: {' '.join(cmd)}\n"
                           f"output (tail):\n{self.output_tail()}")


class Uvicorn(RealServer):
    """uvicorn serving ``echo_asgi:app``.

    Keep-alive: ``timeout_keep_alive`` defaults to 5 s (uvicorn 0.54.0: ``uvicorn/config.py``
    ``Config(timeout_keep_alive: int = 5)`` and ``uvicorn/main.py`` ``--timeout-keep-alive`` default 5): an
    idle connection is closed 5 s after its last response."""

    name = "uvicorn"
    keep_alive_timeout = 5.0

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "echo_asgi:app", "--host", HOST, "--port", str(port),
                "--log-level", LOG_LEVEL]


class Hypercorn(RealServer):
    """hypercorn serving ``echo_asgi:app``.

    Keep-alive: ``keep_alive_timeout`` defaults to 5 s (hypercorn 0.18.0: ``hypercorn/config.py``
    ``keep_alive_timeout = 5 * SECONDS``; ``--keep-alive`` defaults to a sentinel that leaves it; applied by
    ``asyncio/tcp_server.py`` ``_idle_timeout``)."""

    name = "hypercorn"
    keep_alive_timeout = 5.0

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "hypercorn", "echo_asgi:app", "--bind", f"{HOST}:{port}",
                "--log-level", LOG_LEVEL]


class GunicornSync(RealServer):
    """gunicorn, sync worker, 1 worker, serving ``echo_wsgi:app`` (with ``echo_gunicorn_conf.py``).

    Keep-alive: none. ``keepalive`` defaults to 2 s (gunicorn 27.0.1: ``gunicorn/config.py`` class
    ``Keepalive``, ``default = 2``), but its doc says the sync worker does not support persistent connections
    and ignores it: ``workers/sync.py`` calls ``resp.force_close()``, every response says
    ``Connection: close`` and the server closes the connection right after it."""

    name = "gunicorn-sync"
    keep_alive_timeout: ClassVar[float | None] = None
    worker = "sync"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-c", str(APPS / "echo_gunicorn_conf.py"), "-k", self.worker,
                "-w", "1", "-b", f"{HOST}:{port}", "--log-level", LOG_LEVEL, "echo_wsgi:app"]


class GunicornGevent(GunicornSync):
    """gunicorn, gevent worker (``-k gevent``), 1 worker, serving ``echo_wsgi:app``.

    Keep-alive: ``keepalive`` defaults to 2 s (gunicorn 27.0.1: ``gunicorn/config.py`` class ``Keepalive``);
    the async workers wait for the next request under ``gevent.Timeout(cfg.keepalive)``
    (``workers/ggevent.py`` ``timeout_ctx``, ``workers/base_async.py`` keep-alive loop), then close."""

    name = "gunicorn-gevent"
    keep_alive_timeout = 2.0
    worker = "gevent"


class Httpbin(RealServer):
    """psf ``httpbin`` (0.10.4) served by gunicorn (sync worker, 1 worker): httpbin's own routes.

    Keep-alive: none, as ``GunicornSync``. ``seen()`` lists gunicorn's access log (see the module doc)."""

    name = "httpbin"
    keep_alive_timeout: ClassVar[float | None] = None
    # status, bytes sent, client port, then the request line "METHOD RAW_URI SERVER_PROTOCOL" (which may
    # hold spaces only in its target, so it goes last)
    ACCESS_FORMAT = "%(s)s %(b)s %({remote_port}e)s %(r)s"

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        super().__init__(workdir)
        self.log_path = self.dir / "access.log"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"{HOST}:{port}", "--log-level", LOG_LEVEL,
                "--access-logfile", str(self.log_path), "--access-logformat", self.ACCESS_FORMAT, "httpbin:app"]

    def parse_log_line(self, line: str) -> dict[str, Any]:
        status, _sent, port, request_line = line.split(" ", 3)
        method, _, rest = request_line.partition(" ")
        target, _, protocol = rest.rpartition(" ")
        return {"server": self.name, "method": method, "path": target,
                "http_version": protocol.removeprefix("HTTP/"), "status": int(status),
                "client": [HOST, int(port) if port.isdigit() else port], "source": "gunicorn-access-log"}


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format echo escape=json '{{"request_id":"$request_id","request":"$request","status":"$status",'
        '"connection":"$connection","connection_requests":"$connection_requests",'
        '"request_length":"$request_length","bytes_sent":"$bytes_sent","remote_port":"$remote_port",'
        '"host":"$http_host","connection_header":"$http_connection","content_length":"$http_content_length",'
        '"transfer_encoding":"$http_transfer_encoding","accept_encoding":"$http_accept_encoding",'
        '"user_agent":"$http_user_agent","upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
        '"msec":"$msec"}}';
    access_log {d}/access.log echo;
    upstream echo {{
        server {upstream};
        keepalive 8;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Nginx-Request-Id $request_id;
        }}
    }}
}}
"""


class Nginx(RealServer):
    """nginx (1 worker) as a reverse proxy to its own ``GunicornSync`` echo; see the module doc.

    Keep-alive: ``keepalive_timeout`` defaults to 75 s (nginx ``src/http/ngx_http_core_module.c``:
    ``ngx_conf_merge_msec_value(conf->keepalive_timeout, prev->keepalive_timeout, 75000)``; documented as
    ``Default: keepalive_timeout 75s;``); the config sets no keep-alive directive for clients."""

    name = "nginx"
    keep_alive_timeout = 75.0
    REQUEST_ID_HEADER = "x-nginx-request-id"
    NUMERIC = ("status", "connection", "connection_requests", "request_length", "bytes_sent", "remote_port")

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        super().__init__(workdir)
        self.upstream = GunicornSync(self.dir / "upstream")
        self.upstream.echo_name = self.echo_name = "nginx>gunicorn-sync"
        self.access_log = self.dir / "access.log"
        self._access_offset = 0

    def command(self, port: int) -> list[str]:
        binary = nginx_binary()
        if binary is None:
            raise ServerFailed("nginx is not installed (apt-get install -y nginx; .ci/system-deps.sh does it)")
        user = ""
        if os.geteuid() == 0:  # workers would otherwise run as nobody and could not use paths under self.dir
            user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
        conf = self.dir / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(user=user, d=self.dir, host=HOST, port=port,
                                           upstream=f"{HOST}:{self.upstream.port}"))
        return [binary, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")]

    def start(self) -> Nginx:
        self.upstream.start()
        try:
            super().start()
        except BaseException:
            self.upstream.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self.upstream.stop()

    def clear(self) -> None:
        self.upstream.clear()
        self._access_offset = self.access_log.stat().st_size if self.access_log.exists() else 0

    def output_tail(self, chars: int = 3000) -> str:
        error_log = ""
        try:
            error_log = (self.dir / "error.log").read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            pass
        return f"{super().output_tail(chars)}\n[error.log]\n{error_log}"

    def access_entries(self) -> dict[str, dict[str, Any]]:
        """nginx's access-log entries since ``clear()``, by request id."""
        if not self.access_log.exists():
            return {}
        with open(self.access_log, "rb") as handle:
            handle.seek(self._access_offset)
            data = handle.read()
        entries: dict[str, dict[str, Any]] = {}
        for line in data[: data.rfind(b"\n") + 1].decode().splitlines():
            if line.strip():
                entry = json.loads(line)
                for key in self.NUMERIC:
                    if str(entry.get(key, "")).isdigit():
                        entry[key] = int(entry[key])
                entries[entry["request_id"]] = entry
        return entries

    def seen(self, expect: int = 0) -> list[dict[str, Any]]:
        """The upstream's echo records, each with its ``"nginx"`` access-log entry (waits up to LOG_WAIT for
        nginx's log, written after the response)."""
        records = self.upstream.seen(expect)
        deadline = time.monotonic() + LOG_WAIT
        while True:
            entries = self.access_entries()
            ids = [_pop_header(r, self.REQUEST_ID_HEADER) for r in records]
            if all(i in entries for i in ids) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
            records = self.upstream.seen(expect)
        for record, request_id in zip(records, ids):
            record["nginx"] = entries.get(request_id or "")
        return records


def _pop_header(record: dict[str, Any], name: str) -> str | None:
    """Remove header ``name`` from the record; its (last) value."""
    values = [v for k, v in record["headers"] if k == name]
    record["headers"] = [[k, v] for k, v in record["headers"] if k != name]
    return values[-1] if values else None


def record_body(record: dict[str, Any]) -> bytes:
    """The request body of an echo record."""
    return base64.b64decode(record["body_b64"])


def record_header(record: dict[str, Any], name: str) -> list[str]:
    """Every value of header ``name`` (lowercase) in an echo record, in order."""
    return [v for k, v in record["headers"] if k == name]


# ---- raw keep-alive probe -----------------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lowercased names; the last value of repeats
    body: bytes


class RawConnection:
    """One HTTP/1.1 connection on a plain socket, to see exactly when the server closes it.

    ``get()`` sends a ``Connection: keep-alive`` GET and reads the response (Content-Length, chunked without
    trailers, or close-delimited); ``wait_close(wait)`` then waits up to ``wait`` seconds for the server's
    FIN (or RST) and returns how long after the end of the last response it came, or None."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or HOST, parts.port or 80
        self.timeout = timeout
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.buf = b""
        self.eof = False
        self.response_done = 0.0  # time.monotonic() at the end of the last response

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> None:
        self.sock.settimeout(self.timeout)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.buf += data

    def _need(self, n: int, what: str) -> None:
        while len(self.buf) < n:
            if self.eof:
                raise ConnectionError(f"EOF {what}: {self.buf[:200]!r}")
            self._more()

    def _need_line(self, what: str) -> bytes:
        while b"\r\n" not in self.buf:
            if self.eof:
                raise ConnectionError(f"EOF {what}: {self.buf[:200]!r}")
            self._more()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def get(self, path: str, extra_headers: str = "") -> RawResponse:
        if self.eof:
            raise ConnectionError("the server closed the connection")
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: keep-alive\r\n"
                          f"User-Agent: real-servers-probe\r\n{extra_headers}\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise ConnectionError(f"EOF before the end of the response head: {self.buf[:200]!r}")
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "content-length" in headers:
            length = int(headers["content-length"])
            self._need(length, "inside the body")
            body, self.buf = self.buf[:length], self.buf[length:]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._need_line("before a chunk size").split(b";")[0], 16)
                self._need(size + 2, "inside a chunk")
                body, self.buf = body + self.buf[:size], self.buf[size + 2:]
                if size == 0:
                    break
        else:  # close-delimited
            while not self.eof:
                self._more()
            body, self.buf = self.buf, b""
        self.response_done = time.monotonic()
        return RawResponse(status, headers, body)

    def wait_close(self, wait: float) -> float | None:
        """Seconds from the end of the last response to the server's close, or None if still open after
        ``wait`` seconds from now. Bytes arriving on the idle connection are an error."""
        if self.buf:
            raise ConnectionError(f"unexpected bytes after the response: {self.buf[:200]!r}")
        if self.eof:
            return 0.0  # the close came with the response
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except ConnectionResetError:
                data = b""
            if data:
                raise ConnectionError(f"unexpected bytes on an idle connection: {data[:200]!r}")
            self.eof = True
            return time.monotonic() - self.response_done


# ---- fixtures -----------------------------------------------------------------------------------------------
S = TypeVar("S", bound=RealServer)


def _serve(cls: type[S], factory: pytest.TempPathFactory) -> Iterator[S]:
    server = cls(factory.mktemp(cls.name))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def uvicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    yield from _serve(Uvicorn, tmp_path_factory)


@pytest.fixture(scope="session")
def hypercorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hypercorn]:
    yield from _serve(Hypercorn, tmp_path_factory)


@pytest.fixture(scope="session")
def gunicorn_sync_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornSync]:
    yield from _serve(GunicornSync, tmp_path_factory)


@pytest.fixture(scope="session")
def gunicorn_gevent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornGevent]:
    yield from _serve(GunicornGevent, tmp_path_factory)


@pytest.fixture(scope="session")
def httpbin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Httpbin]:
    yield from _serve(Httpbin, tmp_path_factory)


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    yield from _serve(Nginx, tmp_path_factory)


ECHO_SERVERS = ("uvicorn", "hypercorn", "gunicorn_sync", "gunicorn_gevent", "nginx")
ALL_SERVERS = (*ECHO_SERVERS, "httpbin")


def server_fixture(request: pytest.FixtureRequest, key: str) -> RealServer:
    """The session's server for ``key`` (one of ALL_SERVERS), started if needed."""
    server = request.getfixturevalue(f"{key}_server")
    assert isinstance(server, RealServer)
    return server


@pytest.fixture(scope="session", params=ECHO_SERVERS)
def echo_server(request: pytest.FixtureRequest) -> RealServer:
    """Each echo-logging server in turn (the test runs once per server)."""
    return server_fixture(request, request.param)
