"""The target's endpoints: ``dispatch(conn, req) -> status`` for counted paths, ``admin`` for ``/__*``."""

from __future__ import annotations

import json
from collections.abc import Callable

import gevent

from loadgen.target.connection import Connection
from loadgen.target.protocol import JSON, TEXT, Request, response_head
from loadgen.target.state import COUNTERS

ROOT_BODY = b"Hello from loadgen target\n"
MAX_BYTES = 100 * 1024 * 1024
MAX_DELAY_MS = 600_000
MAX_REDIRECTS = 100
MAX_CHUNKS = 100_000
_BLOCK = (bytes(range(97, 123)) * 2521)[:65536]  # 64 KiB of a-z


def root(conn: Connection, req: Request, arg: bytes | None) -> int:
    return conn.respond(200, ROOT_BODY)


def status(conn: Connection, req: Request, arg: bytes | None) -> int:
    code = _int_arg(arg, 200, 599)
    if code is None:
        return conn.respond(400, b"status must be 200..599\n")
    return conn.respond(code, b"status %d\n" % code)


def delay(conn: Connection, req: Request, arg: bytes | None) -> int:
    ms = _int_arg(arg, 0, MAX_DELAY_MS)
    if ms is None:
        return conn.respond(400, b"delay must be 0..%d ms\n" % MAX_DELAY_MS)
    gevent.sleep(ms / 1000.0)
    return conn.respond(200, b"delayed %d ms\n" % ms)


def nbytes(conn: Connection, req: Request, arg: bytes | None) -> int:
    n = _int_arg(arg, 0, MAX_BYTES)
    if n is None:
        return conn.respond(400, b"bytes must be 0..%d\n" % MAX_BYTES)
    if n <= len(_BLOCK):
        return conn.respond(200, _BLOCK[:n], b"application/octet-stream")
    conn.sock.sendall(response_head(200, n, b"application/octet-stream", conn.connection_header()))
    if req.method != b"HEAD":
        block = memoryview(_BLOCK)
        for _ in range(n // len(_BLOCK) + 1):
            if n <= 0:
                break
            conn.sock.sendall(block[:n])
            n -= len(_BLOCK)
    return 200


def stall(conn: Connection, req: Request, arg: bytes | None) -> int:
    conn.hold()
    return 0


def echo(conn: Connection, req: Request, arg: bytes | None) -> int:
    doc = {
        "method": req.method.decode("latin-1"),
        "path": req.target.decode("latin-1"),
        "version": "HTTP/1.0" if req.http10 else "HTTP/1.1",
        "headers": dict(req.headers()),
        "body": req.body.decode("utf-8", "replace"),
    }
    return conn.respond(200, json.dumps(doc).encode() + b"\n", JSON)


def redirect(conn: Connection, req: Request, arg: bytes | None) -> int:
    n = _int_arg(arg, 0, MAX_REDIRECTS)
    if n is None:
        return conn.respond(400, b"redirect must be 0..%d\n" % MAX_REDIRECTS)
    location = "/" if n <= 1 else f"/redirect/{n - 1}"
    return conn.respond(302, b"", headers=[("Location", location)])


def chunked(conn: Connection, req: Request, arg: bytes | None) -> int:
    n = _int_arg(arg, 0, MAX_CHUNKS)
    if n is None:
        return conn.respond(400, b"chunks must be 0..%d\n" % MAX_CHUNKS)
    pieces = [b"chunk %d\n" % i for i in range(n)]
    if req.http10:  # HTTP/1.0 has no chunked framing: send the same body delimited by close
        return conn.respond(200, b"".join(pieces), close=True)
    conn.sock.sendall(response_head(200, None, TEXT, conn.connection_header()))
    if req.method == b"HEAD":
        return 200
    for start in range(0, n, 100):
        conn.sock.sendall(b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces[start:start + 100]))
    conn.sock.sendall(b"0\r\n\r\n")
    return 200


def close(conn: Connection, req: Request, arg: bytes | None) -> int:
    return conn.respond(200, b"closing\n", close=True)


Handler = Callable[[Connection, Request, "bytes | None"], int]
# name -> (handler, takes an argument)
ROUTES: dict[bytes, tuple[Handler, bool]] = {
    b"": (root, False), b"status": (status, True), b"delay": (delay, True), b"bytes": (nbytes, True),
    b"stall": (stall, False), b"echo": (echo, False), b"redirect": (redirect, True),
    b"chunked": (chunked, True), b"close": (close, False),
}


def dispatch(conn: Connection, req: Request) -> int:
    """Route a counted request and answer it; returns the status sent (0 if none)."""
    path = req.path
    if path == b"/":
        return conn.respond(200, ROOT_BODY)
    name, sep, arg = path[1:].partition(b"/")
    route = ROUTES.get(name)
    if route is None or route[1] != bool(sep) or route[1] and not arg:
        return conn.respond(404, b"not found\n")
    return route[0](conn, req, arg if route[1] else None)


def admin(conn: Connection, req: Request) -> None:
    """``GET /__stats`` and ``POST /__reset``; not counted, not logged."""
    if req.path == b"/__stats":
        if req.method not in (b"GET", b"HEAD"):
            conn.respond(405, b"use GET\n", headers=[("Allow", "GET")])
            return
        conn.respond(200, json.dumps(COUNTERS.snapshot()).encode() + b"\n", JSON)
    elif req.path == b"/__reset":
        if req.method != b"POST":
            conn.respond(405, b"use POST\n", headers=[("Allow", "POST")])
            return
        COUNTERS.reset()
        conn.respond(200, b'{"reset": true}\n', JSON)
    else:
        conn.respond(404, b"not found\n")


def _int_arg(arg: bytes | None, low: int, high: int) -> int | None:
    if not arg or not arg.isdigit() or len(arg) > 12:
        return None
    value = int(arg)
    return value if low <= value <= high else None
