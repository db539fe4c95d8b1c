"""One client connection: buffered reads, request bodies, responses, and the keep-alive loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gevent

from loadgen.target.protocol import MAX_HEAD, TEXT, BadRequest, Request, parse_head, response_head
from loadgen.target.state import AccessLog, Counters

MAX_REQUESTS_PER_CONNECTION = 10_000_000
MAX_BODY = 1024 * 1024 * 1024  # request bodies above this are refused (413) and the connection closed
MAX_LINE = 8192  # chunk-size and trailer lines
MAX_CHUNKS = 1_000_000
MAX_TRAILERS = 100
RECV = 65536
STALL_SECONDS = 3600.0  # /stall gives up after an hour even if the client never leaves

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Connection:
    """Serve requests on one (plain or TLS) socket until the client or a ``close`` ends it."""

    __slots__ = ("sock", "conn_id", "counters", "log", "reused", "tls", "resumed", "buf", "keep_alive", "req")

    def __init__(self, sock: Any, conn_id: int, counters: Counters, log: AccessLog | None,
                 tls: bool, resumed: bool) -> None:
        self.sock = sock
        self.conn_id = conn_id
        self.counters = counters
        self.log = log
        self.tls = tls
        self.resumed = resumed
        self.reused = ("r" if resumed else ".") if tls else "-"
        self.buf = b""
        self.keep_alive = True
        self.req: Request | None = None

    # ---- the loop -------------------------------------------------------------------------------------
    def serve(self, dispatch: Callable[[Connection, Request], int],
              admin: Callable[[Connection, Request], None]) -> None:
        """Run ``dispatch(conn, req) -> status`` for each request; ``admin`` handles ``/__*`` paths."""
        counters = self.counters
        for number in range(1, MAX_REQUESTS_PER_CONNECTION + 1):
            head = self._read_head()
            if head is None:
                return
            self.req = None
            try:
                req = parse_head(head)
                req.number = number
                self.req = req
                self.keep_alive = req.keep_alive
                if req.length or req.chunked:
                    req.body = self._read_body(req, keep=req.path == b"/echo")
            except BadRequest as exc:
                self.respond(exc.status, str(exc).encode() + b"\n", close=True)
                return
            if req.path.startswith(b"/__"):
                if number == 1:  # an admin connection is not a counted connection
                    counters.uncount_connection(self.tls, self.resumed)
                admin(self, req)
            else:
                counters.count_request(req.path)
                counters.in_flight += 1
                try:
                    status = dispatch(self, req)
                finally:
                    counters.in_flight -= 1
                if self.log is not None:
                    self.log.write(req.method, req.target, status, self.reused, self.conn_id, number)
            if not self.keep_alive:
                return

    # ---- reading --------------------------------------------------------------------------------------
    def _fill(self) -> bool:
        data = self.sock.recv(RECV)
        if not data:
            return False
        self.buf += data
        return True

    def _read_head(self) -> bytes | None:
        """The next request head, or None when the client closed between requests."""
        buf = self.buf
        while buf.startswith(b"\r\n"):  # tolerated empty lines between requests (bounded by len(buf))
            buf = buf[2:]
        self.buf = buf
        for _ in range(MAX_HEAD):
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = self.buf[:idx]
                self.buf = self.buf[idx + 4:]
                return head
            if len(self.buf) > MAX_HEAD:
                self.respond(431, b"request head too large\n", close=True)
                return None
            if not self._fill():
                return None
        return None

    def _read_line(self) -> bytes:
        for _ in range(MAX_LINE):
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                line = self.buf[:idx]
                self.buf = self.buf[idx + 2:]
                return line
            if len(self.buf) > MAX_LINE:
                raise BadRequest("line too long")
            if not self._fill():
                raise BadRequest("connection closed in body")
        raise BadRequest("line too long")

    def _take(self, n: int, keep: bool) -> bytes:
        """Consume ``n`` body bytes; return them if ``keep`` else discard them."""
        if len(self.buf) >= n:
            data, self.buf = self.buf[:n], self.buf[n:]
            return data if keep else b""
        parts = [self.buf] if keep else []
        left = n - len(self.buf)
        self.buf = b""
        scratch = bytearray(RECV)
        for _ in range(n + 1):  # every recv makes progress, so this ends well before the bound
            if left <= 0:
                break
            got = self.sock.recv_into(scratch, min(left, RECV))
            if not got:
                raise BadRequest("connection closed in body")
            if keep:
                parts.append(bytes(scratch[:got]))
            left -= got
        return b"".join(parts)

    def _read_body(self, req: Request, keep: bool, limit: int = 1024 * 1024) -> bytes:
        """Read the request body; kept (for /echo, up to ``limit``) or discarded."""
        if req.expect_continue:
            self.sock.sendall(_CONTINUE)
        if not req.chunked:
            if req.length > MAX_BODY or keep and req.length > limit:
                raise BadRequest("request body too large", 413)
            return self._take(req.length, keep)
        parts: list[bytes] = []
        total = 0
        for _ in range(MAX_CHUNKS):
            line = self._read_line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                for _ in range(MAX_TRAILERS):
                    if not self._read_line():
                        return b"".join(parts)
                raise BadRequest("too many trailers")
            total += size
            if total > MAX_BODY or keep and total > limit:
                raise BadRequest("request body too large", 413)
            parts.append(self._take(size, keep))
            if self._read_line():
                raise BadRequest("bad chunk terminator")
        raise BadRequest("too many chunks")

    # ---- writing --------------------------------------------------------------------------------------
    def connection_header(self, close: bool = False) -> bytes | None:
        """Value of the Connection header for this response; ``close`` also ends the keep-alive loop."""
        if close:
            self.keep_alive = False
        if not self.keep_alive:
            return b"close"
        return b"keep-alive" if self.req is not None and self.req.http10 else None

    def respond(self, status: int, body: bytes = b"", content_type: bytes | None = TEXT,
                headers: Iterable[tuple[str, str]] = (), close: bool = False) -> int:
        """Send a complete response (no body for HEAD); returns ``status`` for the access log."""
        if status == 204 or status == 304:
            body = b""
        head = response_head(status, len(body), content_type if body else None,
                             self.connection_header(close), headers)
        if self.req is not None and self.req.method == b"HEAD":
            self.sock.sendall(head)
        else:
            self.sock.sendall(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.sock.sendall(body)
        return status

    def hold(self) -> None:
        """Keep the connection open without answering until the client leaves (bounded by STALL_SECONDS)."""
        self.keep_alive = False
        self.sock.settimeout(None)
        with gevent.Timeout(STALL_SECONDS, False):
            for _ in range(MAX_BODY // RECV):  # discard whatever the client still sends
                try:
                    if not self.sock.recv(RECV):
                        return
                except OSError:
                    return
