"""Small raw-socket HTTP/1.1 servers on 127.0.0.1 that behave like real servers do on a bad day.

Each server runs in OS threads with blocking stdlib sockets (one thread per connection), so a blocking
client (`requests`) and loadgen's gevent client can both be pointed at it from the test's thread. A
*handler* gets a `Peer` per connection and decides what to do with it; every request a handler reads is
logged in `RawServer.seen` as the server saw it (connection number, method, target, headers, body).

Everything is bounded: reads time out after `IO_TIMEOUT`, handlers loop at most `MAX_REQUESTS` times.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

IO_TIMEOUT = 10.0
MAX_REQUESTS = 10_000


@dataclass
class Seen:
    """One request as the server read it."""

    conn: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        """Every value of a field (case-insensitive name), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Peer:
    """One accepted connection, as a handler sees it."""

    def __init__(self, sock: socket.socket, index: int, server: RawServer) -> None:
        self.sock = sock
        self.index = index  # 1 for the server's first connection
        self.server = server
        self.buf = b""
        self.requests = 0

    def read_request(self, timeout: float = IO_TIMEOUT) -> Seen | None:
        """The next request (head and Content-Length body), logged; None at EOF or timeout."""
        self.sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    return None
                self.buf += data
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
            length = sum(int(v) for k, v in headers if k.lower() == "content-length")
            while len(self.buf) < length:
                data = self.sock.recv(65536)
                if not data:
                    return None
                self.buf += data
        except (OSError, ValueError):
            return None
        body, self.buf = self.buf[:length], self.buf[length:]
        seen = Seen(self.index, method, target, headers, body)
        self.requests += 1
        with self.server.lock:
            self.server.seen.append(seen)
        return seen

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self, body: bytes = b"ok", status: str = "200 OK", extra: str = "", head_only: bool = False) -> None:
        """A complete keep-alive response with a Content-Length."""
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        self.send(head if head_only else head + body)

    def idle(self, seconds: float) -> bool:
        """Wait up to `seconds` for the client's next bytes; True if none came (the connection idled)."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except OSError:
            return False
        self.buf += data
        return False

    def reset(self) -> None:
        """Abort the connection with an RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Handler = Callable[[Peer], None]


class RawServer:
    """A TCP (or TLS) server on 127.0.0.1 (or ::1) running `handler` for every connection."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.handler = handler
        self.tls = tls
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.listener.bind((host, port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.seen: list[Seen] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.closed = False
        self._socks: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def requests_for(self, target: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.target == target]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def _accept(self) -> None:
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                index = self.connections
                self._socks.add(sock)
            threading.Thread(target=self._serve, args=(sock, index), daemon=True).start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock.settimeout(IO_TIMEOUT)
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (OSError, ValueError):
                    return
            self.handler(Peer(sock, index, self))
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


@contextmanager
def serving(handler: Handler, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1",
            port: int = 0) -> Iterator[RawServer]:
    server = RawServer(handler, tls, host, port)
    try:
        yield server
    finally:
        server.stop()


# ---- handlers ---------------------------------------------------------------------------------------
def answering(body: bytes = b"ok", extra: str = "") -> Handler:
    """Answers every request 200 with `body`, keep-alive (HEAD gets the head only)."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            seen = peer.read_request()
            if seen is None:
                return
            peer.reply(body, extra=extra, head_only=seen.method == "HEAD")

    return handle


def drops_second_request(how: str = "close") -> Handler:
    """Answers a connection's first request, then reads its second and closes (or resets) unanswered:
    the request reached the server, which may have acted on it."""

    def handle(peer: Peer) -> None:
        if peer.read_request() is None:
            return
        peer.reply()
        if peer.read_request() is None:
            return
        if how == "reset":
            peer.reset()

    return handle


def closes_after_each_response() -> Handler:
    """Answers one request per connection as HTTP/1.1 keep-alive (no ``Connection: close``), then closes
    it at once, as tinyproxy 1.11 does with its clients."""

    def handle(peer: Peer) -> None:
        seen = peer.read_request()
        if seen is not None:
            peer.reply(head_only=seen.method == "HEAD")

    return handle


def closes_when_idle(after: float) -> Handler:
    """Closes a keep-alive connection that stays idle for `after` s (uvicorn's 5 s, gunicorn's 2 s)."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            if peer.requests and peer.idle(after):
                return
            seen = peer.read_request()
            if seen is None:
                return
            peer.reply()

    return handle


def keep_alive_header(timeout: int) -> Handler:
    """Announces ``Keep-Alive: timeout=N``; a request on a connection idle for longer is read and then
    dropped unanswered (the race a client loses by ignoring the announcement)."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            idle_from = time.monotonic()
            seen = peer.read_request()
            if seen is None:
                return
            if peer.requests > 1 and time.monotonic() - idle_from > timeout:
                return
            peer.reply(extra=f"Keep-Alive: timeout={timeout}, max=100\r\n")

    return handle


def sends_408_when_idle(after: float) -> Handler:
    """After `after` s idle, sends an unsolicited ``408 Request Timeout`` and closes (as nginx, Node and
    Apache do)."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            if peer.requests and peer.idle(after):
                peer.send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            if peer.read_request() is None:
                return
            peer.reply()

    return handle


def canned(raw: bytes, close: bool = True) -> Handler:
    """Answers each request with exactly `raw`; closes after it unless `close` is False."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            if peer.read_request() is None:
                return
            peer.send(raw)
            if close:
                return

    return handle


def trickling(raw: bytes, pause: float = 0.0005) -> Handler:
    """Answers with `raw` one byte per send (a head arriving in more reads than it has lines)."""

    def handle(peer: Peer) -> None:
        if peer.read_request() is None:
            return
        for i in range(len(raw)):
            peer.send(raw[i : i + 1])
            time.sleep(pause)

    return handle


def slow_path(path: str, seconds: float) -> Handler:
    """Answers `path` after `seconds`, everything else at once."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            seen = peer.read_request()
            if seen is None:
                return
            if seen.target == path:
                time.sleep(seconds)
            peer.reply()

    return handle


def redirecting(location: str, status: str = "302 Found") -> Handler:
    """Answers every request with a redirect to `location`."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            if peer.read_request() is None:
                return
            peer.reply(b"", status, f"Location: {location}\r\n")

    return handle


def free_v6_port_with_v4_closed() -> int:
    """A port free on both [::1] and 127.0.0.1 (so a v6-only server there leaves 127.0.0.1 refusing)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6) as s6:
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.bind(("::1", 0))
            port = s6.getsockname()[1]
        with socket.socket() as s4:
            try:
                s4.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free on both ::1 and 127.0.0.1")
