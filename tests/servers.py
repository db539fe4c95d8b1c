"""Test helpers: run ``loadgen target`` and nginx as subprocesses on free loopback ports.

Import as ``from servers import ...`` (``tests/`` is on ``sys.path`` under pytest's default import mode).
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0
_URL = re.compile(rb"listening on (https?://\S+)")
NGINX_BODY = "x" * 99 + "\n"  # 100 bytes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return proc.returncode


def wait_accepting(host: str, port: int, timeout: float = START_TIMEOUT, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll until ``host:port`` accepts a TCP connection (or fail)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before accepting on {port}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    raise RuntimeError(f"nothing accepts on {host}:{port} after {timeout}s")


def start_target(tls: bool = False, processes: int = 1, access_log: str | os.PathLike[str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m loadgen.target`` on a free port; return ``(proc, base_url)`` once it accepts."""
    cmd = [sys.executable, "-m", "loadgen.target", "--port", "0", "--processes", str(processes), *extra_args]
    if tls:
        cmd.append("--tls")
    if access_log is not None:
        cmd += ["--access-log", str(access_log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO)
    try:
        line = _read_line(proc, START_TIMEOUT)
        m = _URL.search(line)
        if not m:
            raise RuntimeError(f"unexpected target output {line!r}: {_stderr(proc)}")
        url = m.group(1).decode()
        parts = urlsplit(url)
        wait_accepting(parts.hostname or "127.0.0.1", parts.port or 0, proc=proc)
        return proc, url
    except BaseException:
        stop_process(proc)
        raise


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise RuntimeError(f"target did not start within {timeout}s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"target exited ({proc.wait(5)}): {_stderr(proc)}")
    return line


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None or proc.stderr is None:
        return ""
    return proc.stderr.read().decode(errors="replace")[-2000:]


def client_context() -> ssl.SSLContext:
    """An SSL context that trusts the target's self-signed certificate."""
    from loadgen.target.tls import self_signed_cert

    return ssl.create_default_context(cafile=self_signed_cert()[0])


def connection(base_url: str, timeout: float = 5.0) -> http.client.HTTPConnection:
    """A keep-alive ``http.client`` connection to ``base_url`` (HTTPS trusts the target cert)."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=client_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _admin(base_url: str, method: str, path: str) -> dict[str, Any]:
    conn = connection(base_url)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: {resp.status} {body!r}")
        return json.loads(body)
    finally:
        conn.close()


def target_stats(base_url: str) -> dict[str, Any]:
    """``GET /__stats`` (not counted by the target)."""
    return _admin(base_url, "GET", "/__stats")


def reset_target(base_url: str) -> None:
    """``POST /__reset``: zero the target's counters."""
    _admin(base_url, "POST", "/__reset")


@pytest.fixture
def target_factory() -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], str]]]:
    """``start = target_factory; proc, url = start(tls=True)``; every target is stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(**kwargs: Any) -> tuple[subprocess.Popen[bytes], str]:
        proc, url = start_target(**kwargs)
        procs.append(proc)
        return proc, url

    yield start
    for proc in procs:
        stop_process(proc)


# ---- nginx ------------------------------------------------------------------------------------------------
def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format loadgen '$request_method $request_uri $status $ssl_session_reused $connection $connection_requests $msec';
    access_log {tmp}/access.log loadgen;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    ssl_session_cache shared:loadgen:1m;
    ssl_session_timeout 10m;
    ssl_session_tickets on;
    server {{
        listen 127.0.0.1:{http_port};
        location / {{ return 200 '{body}'; }}
    }}
    server {{
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 '{body}'; }}
    }}
}}
"""


def start_nginx(tmpdir: str | os.PathLike[str]) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """Start nginx (``daemon off``, 1 worker) serving a 100-byte 200 on HTTP and HTTPS.

    Returns ``(proc, http_url, https_url, access_log_path)``; the log format is
    ``method uri status ssl_session_reused connection connection_requests`` (``r`` = resumed, ``.`` = full,
    ``-`` = plain). Skips the calling test if nginx is not installed.
    """
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    from loadgen.target.tls import self_signed_cert

    tmp = Path(tmpdir).resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_cert()
    http_port, https_port = free_port(), free_port()
    user = ""
    if os.geteuid() == 0:  # workers would otherwise run as nobody and could not use paths under tmp
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(user=user, tmp=tmp, http_port=http_port, https_port=https_port,
                                       cert=cert, key=key, body=NGINX_BODY.replace("\n", "\\n")))
    proc = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for port in (http_port, https_port):
            wait_accepting("127.0.0.1", port, proc=proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}", str(tmp / "access.log")


def free_udp_tcp_port() -> int:
    """A loopback port free for both UDP and TCP (a DNS server binds both), below the ephemeral range so
    that no client connection takes it a moment later."""
    import random

    for _ in range(100):
        port = random.randint(20000, 32000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no loopback port free for both UDP and TCP")


def access_log_times(path: str | os.PathLike[str]) -> list[float]:
    """Sorted request times from an access log whose last field is a Unix time (target or nginx)."""
    with open(path) as handle:
        return sorted(float(line.split()[-1]) for line in handle if line.strip())


def per_second(times: list[float], start: float, seconds: int) -> list[int]:
    """Requests in each whole second from ``start``."""
    import math

    counts = [0] * seconds
    for t in times:
        k = math.floor(t - start)
        if 0 <= k < seconds:
            counts[k] += 1
    return counts
