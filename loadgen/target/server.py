"""Run the target: listening sockets, the gevent ``StreamServer``, TLS handshakes, pre-forked processes."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sys
import time
from typing import Any

import gevent
from gevent import socket as gsocket
from gevent.server import StreamServer

from loadgen.target.connection import Connection
from loadgen.target.endpoints import admin, dispatch
from loadgen.target.state import COUNTERS, AccessLog
from loadgen.target.tls import server_context

HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0  # keep-alive connections idle longer than this are closed
STOP_TIMEOUT = 1.0  # on SIGTERM, in-flight requests get this long before they are cut
BACKLOG = 1024
MAX_PROCESSES = 256


def serve(host: str = "127.0.0.1", port: int = 8080, tls: bool = False, certfile: str | None = None,
          keyfile: str | None = None, processes: int = 1, access_log: str | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``port=0`` picks a free port; the URL is printed on stdout.

    With ``processes > 1`` the parent forks that many servers, each with its own SO_REUSEPORT socket on the
    same port (the kernel spreads connections) and its own counters; the parent only supervises.
    """
    if not 1 <= processes <= MAX_PROCESSES:
        raise ValueError(f"processes must be 1..{MAX_PROCESSES}")
    ctx = server_context(certfile, keyfile) if tls or certfile else None
    socks = _listeners(host, port, processes)
    scheme = "https" if ctx else "http"
    print(f"loadgen target listening on {scheme}://{host}:{socks[0].getsockname()[1]} "
          f"({processes} process{'es' if processes > 1 else ''})", flush=True)
    if processes == 1:
        _serve_one(socks[0], ctx, access_log)
    else:
        _supervise(socks, ctx, access_log)


def _listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port (the first picks it when ``port`` is 0)."""
    socks: list[socket.socket] = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if count > 1:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, port))
        port = s.getsockname()[1]
        s.listen(BACKLOG)
        socks.append(s)
    return socks


def _serve_one(sock: socket.socket, ctx: Any, access_log: str | None) -> None:
    """One gevent server on ``sock`` until SIGTERM/SIGINT."""
    log = AccessLog(access_log) if access_log else None
    ids = itertools.count(1)

    def handle(raw: Any, _addr: Any) -> None:
        COUNTERS.connections += 1
        COUNTERS.open_connections += 1
        sock = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            resumed = False
            if ctx is not None:
                raw.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    sock = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                    sock.do_handshake()
                except OSError:
                    COUNTERS.tls_failed += 1
                    COUNTERS.connections -= 1
                    return
                resumed = bool(sock.session_reused)
                COUNTERS.tls_handshakes += 1
                COUNTERS.tls_resumed += resumed
            sock.settimeout(IDLE_TIMEOUT)
            Connection(sock, next(ids), COUNTERS, log, ctx is not None, resumed).serve(dispatch, admin)
        except OSError:
            pass  # reset, timeout, broken pipe: the client is gone
        finally:
            COUNTERS.open_connections -= 1
            if sock is not raw:
                _close_notify(sock)
                raw.close()
            sock.close()

    listener = gsocket.socket(fileno=sock.detach())
    server = StreamServer(listener, handle)
    server.stop_timeout = STOP_TIMEOUT
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    try:
        server.serve_forever()
    finally:
        if log is not None:
            log.close()


def _close_notify(sock: Any) -> None:
    """Send TLS close_notify without waiting for the peer's: OpenSSL drops a session from the server-side
    session-id cache when its connection is freed without it, which would defeat TLS 1.2 resumption."""
    try:
        sock.settimeout(0.0)
        sock.unwrap()
    except (OSError, ValueError):
        pass  # SSLWantReadError (no reply awaited), or the peer is already gone


def _supervise(socks: list[socket.socket], ctx: Any, access_log: str | None) -> None:
    """Fork one server per socket; forward SIGTERM/SIGINT; stop all when one dies."""
    children: list[int] = []
    for i, sock in enumerate(socks):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                gevent.reinit()
                for other in socks[:i] + socks[i + 1:]:
                    other.close()
                _serve_one(sock, ctx, access_log)
            except BaseException:  # a child must never return into the parent's code
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    for sock in socks:
        sock.close()

    def forward(signum: int, _frame: Any) -> None:
        for pid in children:
            _kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    pid, _ = os.wait()  # the first child to exit (normally after our forward) ends the whole group
    children.remove(pid)
    forward(signal.SIGTERM, None)
    deadline = time.monotonic() + STOP_TIMEOUT + 4.0
    for _ in range(1000):
        for child in list(children):
            if os.waitpid(child, os.WNOHANG)[0]:
                children.remove(child)
        if not children or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    for child in children:
        _kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
