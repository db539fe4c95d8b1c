"""The body of a ``stream=True`` response, read from its connection as the script iterates it.

For server-sent events and LLM token streams. The request is recorded once the body ends (read to the
end, the response closed, its with-block left, or the response dropped), with its time to first byte
and its body time as separate phases. Framing is llhttp's (`framing.BodyParser`), fed as bytes arrive;
the read timeout applies to each wait for more bytes, as in requests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from http.client import HTTPException
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .codings import stream_decoder
from .counters import COUNTERS
from .encoding import IDEMPOTENT
from .errors import ConnectionClosed, ContentDecodingError, ProtocolError, StaleConnection, not_resent
from .framing import BodyParser, for_llhttp
from .http11 import keep_alive, valid_status_line
from .pool import acquire_live
from .prepared import sent_target
from .redirects import REDIRECTS

if TYPE_CHECKING:
    from .connection import Connection
    from .interfaces import RequestSink
    from .pool import ConnectionPool
    from .urls import Origin

RECV_SIZE = 65536


class BodyStream:
    """The unread body of one response, on the connection it arrives on; records the request at its end."""

    __slots__ = (
        "_conn", "_pool", "_parser", "_decode", "_ready", "_keep", "done", "nbytes", "error", "status_error",
        "prior", "sink", "method", "name", "t0", "queued_us", "ttfb_us", "first_byte", "setup", "ended_at",
    )

    def __init__(self, conn: Connection, pool: ConnectionPool, buf: bytes, head: bytes, head_only: bool,
                 nbytes: int, keep_alive_wanted: bool) -> None:
        self._conn: Connection | None = conn
        self._pool = pool
        lhead = head.lower()
        self._keep = keep_alive_wanted and keep_alive(head, lhead)
        coding = _field(lhead, b"\r\ncontent-encoding:")
        self._decode = stream_decoder(coding) if coding else None
        self._ready: list[bytes] = []  # decoded body pieces not yet taken by the script
        self.done = False
        self.nbytes = nbytes  # received on this connection
        self.prior = 0  # ... and by the redirects before it
        self.error: str | None = None  # a transport failure that ended the body
        self.status_error: str | None = None  # the response's HTTP error (the session sets it)
        self.sink: RequestSink | None = None  # None: not recorded here (catch_response records it)
        self.method = self.name = ""
        self.t0 = self.first_byte = self.ended_at = 0.0
        self.queued_us = self.ttfb_us = 0
        self.setup: tuple[int, int, int] | None = None
        buf, _ = for_llhttp(buf, head, lhead)
        self._parser = BodyParser(head_only, sys.maxsize)
        self._feed(buf)

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived."""
        return self._parser.done

    def _feed(self, data: bytes) -> None:
        """Frame `data`, decoding the body pieces it completes into `_ready`."""
        parser = self._parser
        try:
            parser.feed(data)
        except HTTPException as exc:
            if not parser.done:
                raise ProtocolError(f"invalid response: {exc}") from None
            self._keep = False  # junk after a complete response: drop the connection
        if parser.chunks:
            pieces = parser.chunks
            parser.chunks = []
            decode = self._decode
            if decode is not None:
                try:
                    pieces = [decode(piece) for piece in pieces]
                except ContentDecodingError as exc:
                    self._ready.clear()
                    self._end(f"ContentDecodingError: {exc}")
                    return
            self._ready.extend(piece for piece in pieces if piece)

    def chunks(self) -> Iterator[bytes]:
        """The body, decoded (Content-Encoding), in the pieces it arrives in; a transport failure ends it
        and is recorded as the request's failure (it is not raised)."""
        ready = self._ready
        while True:
            while ready:
                yield ready.pop(0)
            if self.done:
                return
            try:
                data = self._recv()
                if data:
                    self.nbytes += len(data)
                    self._feed(data)
                else:
                    try:
                        self._parser.feed(b"")  # completes a close-delimited body
                    except HTTPException:
                        pass
                    if not self._parser.done:
                        raise ConnectionClosed("server closed the connection before the end of the body")
                    self._keep = False
            except (OSError, ValueError, ProtocolError) as exc:
                ready.clear()
                self._end(f"{type(exc).__name__}: {exc}")
                return
            if self._parser.done:
                self._end(None)

    def read_all(self, limit: int) -> tuple[bytes, bool]:
        """The rest of the body, at most `limit` bytes kept (the rest is read and dropped): (body, cut)."""
        kept: list[bytes] = []
        size = 0
        for piece in self.chunks():
            if size < limit:
                kept.append(piece[: limit - size])
            size += len(piece)
        return b"".join(kept), size > limit

    def _recv(self) -> bytes:
        """One read, under the read timeout (the watchdog aborts it)."""
        conn = self._conn
        assert conn is not None
        rt = conn.read_timeout
        if rt is None:
            return conn._recv(RECV_SIZE)
        conn.deadline = perf_counter() + rt
        inflight = conn.watchdog.inflight
        inflight.add(conn)
        try:
            return conn._recv(RECV_SIZE)
        finally:
            inflight.discard(conn)

    def close_complete(self) -> None:
        """The whole body is in: give the connection back now (the script reads it from memory)."""
        self._end(None)

    def close(self) -> None:
        """Stop reading: the request is recorded with what arrived (the connection is not reused)."""
        if not self.done:
            self._keep = False
            self._end(None)

    def interrupt(self) -> None:
        """Killed before the body ended: recorded as interrupted (not with what arrived), the connection dropped."""
        sink = self.sink
        if sink is not None and not self.done:
            self.sink = None
            sink.record_interrupted(self.method, self.name)
        self.close()

    def attach(self, sink: RequestSink | None, method: str, name: str, t0: float, queued_us: int,
               status_error: str | None) -> None:
        """What to record, and where, once the body ends (now, if it already has); `t0` is when the
        request started (before any redirect). A None `sink`: the caller records (catch_response)."""
        self.sink = sink
        self.method = method
        self.name = name
        self.t0 = t0
        self.queued_us = queued_us
        self.status_error = status_error
        if self.done:
            self._record()

    def _end(self, error: str | None) -> None:
        if self.done:
            return
        self.done = True
        self.ended_at = perf_counter()
        conn = self._conn
        self._conn = None
        if conn is not None:
            if error is None and self._keep and self._parser.done and self._parser.begun == 1:
                self._pool.release(conn, True, self.t0)
            else:
                self._pool.discard(conn)
        self.error = error
        COUNTERS.bytes_received += self.nbytes
        self._record()

    def _record(self) -> None:
        sink = self.sink
        if sink is not None:
            self.sink = None
            sink.record(self.method, self.name, self.latency_us, self.prior + self.nbytes, self.error or self.status_error,
                        self.queued_us, self.ttfb_us, self.body_us, self.setup)

    @property
    def latency_us(self) -> int:
        """From the request's start to the body's end (or now, while it is being read)."""
        return int(((self.ended_at if self.done else perf_counter()) - self.t0) * 1_000_000)

    @property
    def body_us(self) -> int:
        """From the first response byte to the body's end."""
        return int(((self.ended_at if self.done else perf_counter()) - self.first_byte) * 1_000_000)

    def phases(self) -> tuple[int, int, tuple[int, int, int] | None]:
        """(time to first byte µs, body µs, setup), as `RequestSink.record` takes them."""
        return self.ttfb_us, self.body_us, self.setup

    def __del__(self) -> None:  # a response dropped before its end: record what arrived
        if not self.done:
            try:
                self.close()
            except Exception:  # noqa: S110 - a finalizer must not raise
                pass


def _field(lhead: bytes, name: bytes) -> str:
    """The value of header `name` (lower case, with its CRLF) in `lhead`, or ""."""
    i = lhead.find(name)
    if i < 0:
        return ""
    end = lhead.find(b"\r\n", i + 2)
    return lhead[i + len(name) : end if end >= 0 else len(lhead)].decode("latin-1").strip()


def read_head(conn: Connection, wire: bytes) -> tuple[int, bytes, bytes, int]:
    """Send `wire` and read the final response head: (status, head, everything read from the head on,
    bytes dropped with interim responses)."""
    sock = conn.sock
    rt = conn.read_timeout
    inflight = conn.watchdog.inflight
    conn.sent_at = start = perf_counter()
    if rt is not None:
        conn.deadline = start + rt
        inflight.add(conn)
    try:
        try:
            sent = sock.send(wire)
        except (OSError, ValueError) as exc:
            conn._failed(exc, True)
            raise
        try:
            if sent < len(wire):
                conn._send_rest(memoryview(wire)[sent:])
            buf = sock.recv(RECV_SIZE)
            conn.first_byte = perf_counter()
        except (OSError, ValueError) as exc:
            conn._failed(exc, False)
            raise
        if not buf:
            if conn.requests:
                raise StaleConnection("server closed the keep-alive connection without a response")
            raise ConnectionClosed("server closed the connection without a response")
        conn.requests += 1
        buf, i, extra = conn._read_head(buf, buf.find(b"\r\n\r\n"))
        head = buf[:i]
        if not valid_status_line(head):
            line = bytes(head[:60]).split(b"\r", 1)[0]
            raise ProtocolError(f"invalid status line: {line!r}")
        if conn.tls_cache is not None:
            conn._save_tls_session(sock)
        return int(head[9:12]), head, buf, extra
    finally:
        if rt is not None:
            inflight.discard(conn)


class StreamExchange:
    """The session's exchange for ``stream=True`` (an `redirects.Exchange`): a redirect's body is read
    whole (when redirects are followed), the final response's is left for the script as `last`."""

    __slots__ = ("session", "follow", "last", "setup", "ttfb_us", "first_byte")

    def __init__(self, session: Any, follow: bool) -> None:
        self.session = session
        self.follow = follow
        self.last: BodyStream | None = None
        self.setup: tuple[int, int, int] | None = None
        self.ttfb_us = 0
        self.first_byte = 0.0

    def __call__(self, origin: Origin, wire: bytes, method: str, ct: float | None, rt: float | None,
                 t0: float) -> tuple[int, bytes, bytes, int, int]:
        session = self.session
        pool: ConnectionPool = session._pool
        for attempt in (0, 1):
            conn = pool.acquire(origin, t0, ct, rt) if method in IDEMPOTENT else acquire_live(pool, origin, t0, ct, rt)
            try:
                if conn.read_timeout != rt:
                    conn.set_read_timeout(rt)
                status, head, buf, extra = read_head(conn, wire)
                stream = BodyStream(conn, pool, buf, head, method == "HEAD", len(buf) + extra, session._keep_alive)
            except StaleConnection as exc:
                pool.discard(conn)
                if attempt or not (exc.unsent or method in IDEMPOTENT):
                    raise ConnectionClosed(not_resent(exc, method, bool(attempt))) from None
                COUNTERS.retries += 1
                continue
            except BaseException:
                pool.discard(conn)
                raise
            COUNTERS.requests += 1
            COUNTERS.bytes_sent += len(wire)
            stream.t0 = t0
            stream.first_byte = self.first_byte = conn.first_byte
            stream.ttfb_us = self.ttfb_us = int((conn.first_byte - conn.sent_at) * 1_000_000)
            stream.setup = self.setup = conn.setup if conn.requests == 1 else None
            if b"\r\nset-cookie:" in head.lower():
                session.cookies.extract(origin.prefix + sent_target(wire), head)
            if stream.complete:
                stream.close_complete()
            if self.follow and status in REDIRECTS:
                body, _ = stream.read_all(session._max_body)
                return status, head, body, stream.nbytes, 0
            self.last = stream
            return status, head, b"", stream.nbytes, 0
        raise AssertionError("unreachable")  # pragma: no cover
