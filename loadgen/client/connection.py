"""One keep-alive HTTP/1.1 connection on a gevent socket: send, read and frame responses.

Opening is `dial`'s (DNS, TCP, TLS) and the response-head rules are `http11`'s. Framing: the
common response (status line + headers + Content-Length body) is framed here with a few byte
searches; anything else (chunked, close-delimited, HEAD, 204/304, odd or repeated length
fields) goes to geventhttpclient's llhttp parser, fed with the bytes already read.
"""

from __future__ import annotations

from http.client import HTTPException
from ssl import SSLEOFError, SSLWantReadError, SSLWantWriteError
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .counters import COUNTERS
from .dial import TLSKey, dial
from .errors import ConnectionClosed, ProtocolError, ReadTimeout, StaleConnection
from .framing import BodyParser, for_llhttp
from .http11 import (
    ENCODED,
    SETS_COOKIES,
    STATUS_FIELDS,
    TRUNCATED,
    content_length,
    is_interim,
    keep_alive,
    keep_alive_timeout,
)
from .liveness import is_dropped
from .tls import TLSSessionCache, session_of
from .urls import Origin

if TYPE_CHECKING:
    from gevent import socket as gsocket
    from gevent import ssl

    from .deadlines import ReadDeadlines
    from .dns import DnsCache

RECV_SIZE = 65536
_WOULD_BLOCK = (SSLWantReadError, SSLWantWriteError)
MAX_HEAD = 65536
MAX_INTERIM = 100  # 1xx responses skipped before the final one
KEEP_ALIVE_MARGIN = 0.5  # reuse a connection only this long (at most half) before the server's Keep-Alive timeout


class Connection:
    """A connected (and, for https, TLS-wrapped) socket plus reuse bookkeeping.

    The socket itself has no timeout after connecting: while a request is in flight the
    connection sits in `watchdog.inflight` with a `deadline`, refreshed whenever bytes arrive.
    """

    __slots__ = (
        "sock", "origin", "requests", "last_used", "read_timeout", "deadline", "timed_out",
        "tls_key", "tls_cache", "registry", "watchdog", "idle_limit", "setup", "sent_at", "first_byte", "tls",
        "raw",
    )

    def __init__(self, sock: gsocket.socket, origin: Origin, watchdog: ReadDeadlines | None = None) -> None:
        self.sock = sock
        self.origin = origin
        self.requests = 0
        self.last_used = 0.0
        self.read_timeout: float | None = None
        self.deadline = 0.0
        self.timed_out = False
        self.tls_key: TLSKey | None = None
        self.tls_cache: TLSSessionCache | None = None
        self.registry: set[Connection] | None = None
        self.watchdog = watchdog if watchdog is not None else _NO_WATCHDOG
        self.idle_limit = float("inf")  # seconds idle after which the server may close it (Keep-Alive: timeout=)
        self.setup: tuple[int, int, int] | None = None  # (DNS, connect, TLS) µs of opening it, -1: not paid
        self.sent_at = 0.0  # perf_counter() when the current request was sent
        self.first_byte = 0.0  # ... and when the first byte of its response arrived
        self.tls: Any = getattr(sock, "_sslobj", None)  # https: the OpenSSL object, read and written directly
        self.raw: Any = None if self.tls is not None else sock._sock  # http: the OS socket gevent wraps

    @classmethod
    def open(
        cls,
        origin: Origin,
        dns: DnsCache,
        connect_timeout: float | None,
        read_timeout: float | None,
        ssl_context: ssl.SSLContext | None = None,
        tls_cache: TLSSessionCache | None = None,
        registry: set[Connection] | None = None,
        watchdog: ReadDeadlines | None = None,
    ) -> Connection:
        """Resolve, connect and (https) handshake through `dial`, then set up the bookkeeping."""
        sock, tls_key, setup = dial(origin, dns, connect_timeout, ssl_context, tls_cache)
        conn = cls(sock, origin, watchdog)
        conn.setup = setup
        conn.read_timeout = read_timeout
        if watchdog is not None:
            watchdog.ensure_tick(read_timeout)
        if tls_key is not None and tls_cache is not None and tls_cache.wants(tls_key, sock.session_reused):
            conn.tls_key = tls_key
            conn.tls_cache = tls_cache
        if registry is not None:
            conn.registry = registry
            registry.add(conn)
        return conn

    def close(self) -> None:
        """Close the socket (idempotent) and count it."""
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self._save_tls_session(sock)
        if self.registry is not None:
            self.registry.discard(self)
        try:
            sock.close()
        finally:
            COUNTERS.closed += 1

    def expire(self) -> None:
        """Called by the watchdog: the read deadline passed, abort the blocked request."""
        self.timed_out = True
        self.close()

    @property
    def closed(self) -> bool:
        return self.sock is None

    def _save_tls_session(self, sock: gsocket.socket) -> None:
        cache = self.tls_cache
        if cache is not None:
            self.tls_cache = None
            try:
                cache.put(self.tls_key, session_of(sock))  # type: ignore[arg-type]
            except (AttributeError, ValueError, OSError):
                cache.abandon(self.tls_key)  # type: ignore[arg-type]

    def set_read_timeout(self, timeout: float | None) -> None:
        self.read_timeout = timeout
        self.watchdog.ensure_tick(timeout)

    def _timeout_error(self, detail: str = "") -> ReadTimeout:
        return ReadTimeout(f"read timed out after {self.read_timeout} s{detail}")

    def _failed(self, exc: BaseException, unsent: bool) -> None:
        """Map a send/recv failure before any response byte: timeout, or (on a reused connection)
        `StaleConnection`, saying whether any of the request had left; else the caller re-raises."""
        if self.timed_out or isinstance(exc, TimeoutError):
            raise self._timeout_error() from None
        if isinstance(exc, ValueError) and not self.requests:
            return
        if self.requests:
            raise StaleConnection(f"{type(exc).__name__}: {exc}", unsent) from exc

    def _note_keep_alive(self, lhead: bytes) -> None:
        """Honour ``Keep-Alive: timeout=N`` (as the connection's first response announced it): do not
        reuse the connection once it has idled that long."""
        timeout = keep_alive_timeout(lhead)
        if timeout is not None:
            self.idle_limit = timeout - min(KEEP_ALIVE_MARGIN, timeout / 2)

    def is_dropped(self) -> bool:
        """Whether this idle connection can no longer be used (see `liveness.is_dropped`)."""
        return self.sock is None or is_dropped(self.sock)

    def roundtrip(self, data: bytes, head_only: bool, max_body: int) -> tuple[int, bytes, bytes, int, bool, int]:
        """Send `data`, read one response: (status, head, body, bytes received, keep-alive, flags), where
        flags has `TRUNCATED`, `ENCODED` and `SETS_COOKIES` of `http11`."""
        sock = self.sock
        rt = self.read_timeout
        inflight = self.watchdog.inflight
        self.sent_at = start = perf_counter()
        if rt is not None:
            self.deadline = start + rt
            inflight.add(self)
        tls = self.tls
        try:
            try:
                if tls is None:
                    sent = sock.send(data)  # one syscall; gevent's sendall adds a getsockopt per call
                else:
                    try:
                        sent = tls.write(data)  # OpenSSL directly: no gevent wrapper unless it would block
                    except _WOULD_BLOCK:
                        sent = sock.send(data)  # gevent waits and retries
            except (OSError, ValueError) as exc:  # ValueError: gevent's SSL socket closed under us
                self._failed(exc, True)
                raise
            try:
                if sent < len(data):
                    self._send_rest(memoryview(data)[sent:])
                if tls is None:  # wait until readable, then recv: no BlockingIOError raised and caught
                    sock._wait(sock._read_event)
                    try:
                        buf = self.raw.recv(RECV_SIZE)
                    except BlockingIOError:  # woken without data after all: gevent's loop
                        buf = sock.recv(RECV_SIZE)
                else:  # wait until readable, then read: no SSLWantReadError raised and caught per request
                    if not tls.pending():
                        sock._wait(sock._read_event)
                    try:
                        buf = tls.read(RECV_SIZE)
                    except _WOULD_BLOCK:  # a partial record: gevent waits and retries
                        buf = sock.recv(RECV_SIZE)
                    except SSLEOFError:  # closed without close_notify: EOF, as gevent's suppress_ragged_eofs
                        buf = b""
                self.first_byte = perf_counter()
            except (OSError, ValueError, AttributeError) as exc:  # AttributeError: closed while we sent
                self._failed(exc, False)
                raise
            if not buf:
                if self.requests:
                    raise StaleConnection("server closed the keep-alive connection without a response")
                raise ConnectionClosed("server closed the connection without a response")
            self.requests += 1
            extra = 0
            i = buf.find(b"\r\n\r\n")
            if i < 0 or buf[9:10] == b"1":
                buf, i, extra = self._read_head(buf, i)
            head = buf[:i]
            # HTTP/1.x SP 3DIGIT (SP / end of line), RFC 9112 section 4: one slice, one lookup
            status = STATUS_FIELDS.get(head[8:13], 0)
            if not status or head[:7] != b"HTTP/1." or not 48 <= head[7] <= 57:
                raise ProtocolError(f"invalid status line: {_first_line(head)!r}")
            lhead = head.lower()
            j = lhead.find(b"\r\ncontent-length:")
            if j < 0 or head_only or status == 204 or status == 304 or b"\r\ntransfer-encoding:" in lhead:
                return self._read_slow(buf, head, status, head_only, max_body, extra)
            e = lhead.find(b"\r\n", j + 17)
            if e < 0:
                e = len(lhead)
            field = lhead[j + 18 : e]  # after "content-length: "
            if lhead[j + 17] == 32 and field.isdigit() and lhead.find(b"\r\ncontent-length:", e) < 0:
                length = int(field)
            else:  # repeated, a list, or invalid: all values must be the same digits
                try:
                    length = content_length(lhead, j)
                except ValueError as exc:
                    raise ProtocolError(str(exc)) from None
            keep = True
            if b"close" in lhead or head[5:8] == b"1.0":  # HTTP/1.1 is keep-alive unless it says close
                keep = keep_alive(head, lhead)
            if self.requests == 1 and b"\r\nkeep-alive:" in lhead:  # a server announces it on every response
                self._note_keep_alive(lhead)
            flags = 0
            if b"\r\ncontent-encoding:" in lhead:
                flags = ENCODED
            if b"\r\nset-cookie:" in lhead:
                flags |= SETS_COOKIES
            start = i + 4
            end = start + length
            have = len(buf)
            if have < end:
                body, got, truncated = self._read_body(buf[start:], length, max_body)
                return status, head, body, have + got + extra, keep, flags | TRUNCATED if truncated else flags
            if have == end:
                body = buf[start:]
            else:  # bytes beyond the response: we never pipeline, so the stream is broken
                body = buf[start:end]
                keep = False
            if self.tls_cache is not None:
                self._save_tls_session(sock)
            if length > max_body:
                return status, head, body[:max_body], have + extra, keep, flags | TRUNCATED
            return status, head, body, have + extra, keep, flags
        finally:
            if rt is not None:
                inflight.discard(self)

    def _recv(self, n: int) -> bytes:
        """recv for the slower paths: refreshes the deadline, maps a watchdog abort."""
        try:
            data = self.sock.recv(n)
        except (OSError, ValueError, AttributeError) as exc:  # AttributeError: sock is None
            if self.timed_out or isinstance(exc, TimeoutError):
                raise self._timeout_error() from None
            raise
        if self.read_timeout is not None:
            self.deadline = perf_counter() + self.read_timeout
        return data

    def _send_rest(self, view: memoryview) -> None:
        """Send what one send() did not take, refreshing the deadline as the peer reads."""
        sent = 0
        for _ in range(1 << 30):
            if sent >= len(view):
                return
            try:
                sent += self.sock.send(view[sent:])
            except (OSError, ValueError, AttributeError):
                if self.timed_out:
                    raise self._timeout_error() from None
                raise
            if self.read_timeout is not None:
                self.deadline = perf_counter() + self.read_timeout

    def _read_head(self, buf: bytes, i: int) -> tuple[bytes, int, int]:
        """Read until a final (non-1xx) response head is complete; returns (buf, end, dropped)."""
        dropped = 0
        interim = 0
        while True:  # bounded: every read adds a byte towards MAX_HEAD, every 1xx counts to MAX_INTERIM
            if i >= 0:
                if not is_interim(buf):
                    return buf, i, dropped
                interim += 1
                if interim > MAX_INTERIM:
                    raise ProtocolError(f"more than {MAX_INTERIM} interim (1xx) responses")
                dropped += i + 4  # an interim 1xx response: skip it
                buf = buf[i + 4 :]
                i = buf.find(b"\r\n\r\n")
                continue
            if len(buf) > MAX_HEAD:
                raise ProtocolError(f"response head larger than {MAX_HEAD} bytes")
            chunk = self._recv(RECV_SIZE)
            if not chunk:
                raise ConnectionClosed("server closed the connection before the end of the headers")
            buf += chunk
            i = buf.find(b"\r\n\r\n", max(0, len(buf) - len(chunk) - 3))

    def _read_body(self, have: bytes, length: int, max_body: int) -> tuple[bytes, int, bool]:
        """Read the rest of a Content-Length body; keeps at most `max_body` bytes."""
        keep_len = min(length, max_body)
        out = bytearray(keep_len)
        n = min(len(have), keep_len)
        out[:n] = have[:n]
        pos = len(have)  # body bytes seen so far
        got = 0
        while pos < length:
            chunk = self._recv(min(RECV_SIZE, length - pos))
            if not chunk:
                raise ConnectionClosed(f"server closed the connection after {pos} of {length} body bytes")
            if pos < keep_len:
                take = min(len(chunk), keep_len - pos)
                out[pos : pos + take] = chunk[:take]
            pos += len(chunk)
            got += len(chunk)
        if self.tls_cache is not None:
            self._save_tls_session(self.sock)
        return bytes(out), got, length > keep_len

    def _read_slow(
        self, buf: bytes, head: bytes, status: int, head_only: bool, max_body: int, extra: int
    ) -> tuple[int, bytes, bytes, int, bool, int]:
        """Frame the response with llhttp (chunked, close-delimited, HEAD, 204/304, ...)."""
        nbytes = len(buf) + extra
        lhead = head.lower()
        buf, head = for_llhttp(buf, head, lhead)
        parser = BodyParser(head_only, max_body)
        eof = False
        try:
            parser.feed(buf)
            while not parser.done:
                data = self._recv(RECV_SIZE)
                nbytes += len(data)
                if not data:
                    eof = True
                    try:
                        parser.feed(b"")  # completes a close-delimited body
                    except HTTPException:
                        pass
                    if not parser.done:
                        raise ConnectionClosed("server closed the connection before the end of the body")
                    break
                parser.feed(data)
        except HTTPException as exc:
            if not parser.done:
                raise ProtocolError(f"invalid response: {exc}") from None
            eof = True  # junk after a complete response: drop the connection
        if self.requests == 1 and b"\r\nkeep-alive:" in lhead:
            self._note_keep_alive(lhead)
        keep = not eof and parser.begun == 1 and parser.should_keep_alive()
        if keep and (b"\r\nconnection:" in head.lower()):
            keep = keep_alive(head, head.lower())
        chunks = parser.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self.tls_cache is not None and self.sock is not None:
            self._save_tls_session(self.sock)
        flags = TRUNCATED if parser.truncated else 0
        if b"\r\ncontent-encoding:" in lhead:
            flags |= ENCODED
        if b"\r\nset-cookie:" in lhead:
            flags |= SETS_COOKIES
        return status, head, body, nbytes, keep, flags


def _first_line(head: bytes) -> bytes:
    return bytes(head[:60]).split(b"\r", 1)[0]


class _NoWatchdog:
    """Stand-in when a connection is used without a factory: deadlines are not enforced."""

    inflight: set[Connection] = set()

    def ensure_tick(self, timeout: float | None) -> None:
        pass


_NO_WATCHDOG: ReadDeadlines = _NoWatchdog()  # type: ignore[assignment]
