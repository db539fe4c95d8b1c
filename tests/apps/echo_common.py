"""What the echo apps (``echo_asgi``, ``echo_wsgi``) share: the request record, its log, and the routes.

The record of one request, as the server handed it to the app::

    {"server": ECHO_SERVER, "method": "POST", "path": "/a%20b?x=1",   # request target as received
     "http_version": "1.1", "headers": [["host", "127.0.0.1:8000"], ...],   # lowercased, in order
     "body_b64": "...", "body_len": 5, "client": ["127.0.0.1", 40000], "time": 1700000000.0,
     "sources": {"path": "raw_path+query_string", "headers": "asgi-scope"}}

``sources`` says where ``path`` and ``headers`` came from (an ASGI scope keeps both as received; a WSGI
environ keeps neither, so ``echo_wsgi`` prefers what the server gives it, see there). The record is appended
as one JSON line to the file named by ``ECHO_LOG`` (open, append, flush, close per request; nothing is logged
when it is unset) *before* the response is sent, so a client that has its response can read the log.

Routes (any method; the query string is parsed with ``parse_qsl``):

    anything else              200, the record as ``application/json``
    /status/NNN                that status (200..599) with the record as body (no body for 204 and 304)
    /gzip                      the record gzip-encoded with ``Content-Encoding: gzip`` only if the request's
                               Accept-Encoding contains ``gzip``; otherwise plain; always ``Vary``
    /redirect?to=URL&code=302  that redirect (301, 302, 303, 307, 308) to URL (default ``/``)
    /set-cookie?a=1&b=2        200, one ``Set-Cookie: NAME=VALUE; Path=/`` per pair
    /sleep?s=0.5               sleeps ``s`` seconds (0..5) before answering
    /stream?n=5&delay=0.05     ``n`` (0..1000) NDJSON chunks ``{"chunk": i, "of": n}``, ``delay`` (0..1 s,
                               and at most 5 s in all) between them, without a length (HTTP/1.1 chunked
                               transfer, ASGI ``more_body``)

A bad parameter answers 400 with the record. A HEAD answers the same headers without a body.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

MAX_SLEEP = 5.0
MAX_CHUNKS = 1000
MAX_CHUNK_DELAY = 1.0
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def make_record(*, method: str, path: str, http_version: str, headers: list[list[str]], body: bytes,
                client: list[Any] | None, sources: dict[str, str]) -> dict[str, Any]:
    return {
        "server": os.environ.get("ECHO_SERVER", "unknown"),
        "method": method,
        "path": path,
        "http_version": http_version,
        "headers": headers,
        "body_b64": base64.b64encode(body).decode("ascii"),
        "body_len": len(body),
        "client": client,
        "time": time.time(),
        "sources": sources,
    }


def log_record(record: dict[str, Any]) -> None:
    """Append the record to ``$ECHO_LOG`` as one line (one ``write`` in append mode, flushed, closed)."""
    path = os.environ.get("ECHO_LOG")
    if not path:
        return
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


@dataclass
class Reply:
    """What to answer: a fixed body, or ``chunks`` (then ``body`` is unused), after ``sleep`` seconds."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    sleep: float = 0.0
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0

    def header_list(self) -> list[tuple[str, str]]:
        """The headers to send, with ``Content-Length`` for a fixed body (also for HEAD)."""
        headers = list(self.headers)
        if self.chunks is None and self.status not in (204, 304):
            headers.append(("content-length", str(len(self.body))))
        return headers

    def body_for(self, method: str) -> bytes:
        return b"" if method == "HEAD" or self.status in (204, 304) else self.body


def _finite(value: str, low: float, high: float) -> float:
    number = float(value)
    if math.isnan(number):
        raise ValueError("NaN")
    return min(max(number, low), high)


def plan(record: dict[str, Any]) -> Reply:
    """The reply to the request that ``record`` describes (see the module docstring for the routes)."""
    target: str = record["path"]
    route, _, query_string = target.partition("?")
    query = parse_qsl(query_string, keep_blank_values=True)
    params = dict(query)
    echo = json.dumps(record, separators=(",", ":")).encode()
    json_type = ("content-type", "application/json")
    try:
        if route.startswith("/status/"):
            code = int(route[len("/status/"):])
            if not 200 <= code <= 599:
                raise ValueError(f"status {code} out of 200..599")
            return Reply(status=code, headers=[json_type], body=echo)
        if route == "/gzip":
            accept = ",".join(v for k, v in record["headers"] if k == "accept-encoding").lower()
            if "gzip" in accept:
                return Reply(headers=[json_type, ("content-encoding", "gzip"), ("vary", "Accept-Encoding")],
                             body=gzip.compress(echo, mtime=0))
            return Reply(headers=[json_type, ("vary", "Accept-Encoding")], body=echo)
        if route == "/redirect":
            code = int(params.get("code", "302"))
            if code not in REDIRECT_CODES:
                raise ValueError(f"redirect code {code} not in {sorted(REDIRECT_CODES)}")
            return Reply(status=code, headers=[json_type, ("location", params.get("to", "/"))], body=echo)
        if route == "/set-cookie":
            cookies = [("set-cookie", f"{name}={value}; Path=/") for name, value in query]
            return Reply(headers=[json_type, *cookies], body=echo)
        if route == "/sleep":
            return Reply(headers=[json_type], body=echo, sleep=_finite(params.get("s", "0.5"), 0.0, MAX_SLEEP))
        if route == "/stream":
            n = int(params.get("n", "5"))
            if not 0 <= n <= MAX_CHUNKS:
                raise ValueError(f"n={n} out of 0..{MAX_CHUNKS}")
            delay = _finite(params.get("delay", "0.05"), 0.0, MAX_CHUNK_DELAY)
            if n > 1:
                delay = min(delay, MAX_SLEEP / (n - 1))
            chunks = [json.dumps({"chunk": i, "of": n}).encode() + b"\n" for i in range(n)]
            return Reply(headers=[("content-type", "application/x-ndjson")], chunks=chunks, chunk_delay=delay)
    except ValueError as exc:
        return Reply(status=400, headers=[json_type, ("x-echo-error", str(exc)[:200])], body=echo)
    return Reply(headers=[json_type], body=echo)
