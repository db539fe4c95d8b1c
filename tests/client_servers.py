"""Real HTTP(S) servers on 127.0.0.1 for the client tests (gevent StreamServer, canned replies).

Routes (path without query):
  /, /cl          200 with Content-Length body b"hello"
  /chunked        chunked body (3 chunks)
  /close          HTTP/1.1, Connection: close, body ends at EOF
  /http10         HTTP/1.0 without a length (close-delimited)
  /redirect/N     302 to /redirect/N-1; /redirect/0 answers 200 b"landed"
  /see-other      303 to /echo (a POST turns into a GET)
  /goto?url=U     302 to the absolute URL U
  /status/NNN     that status with a short body
  /reset          connection reset (RST) without an answer
  /hang           reads the request and never answers (until the client goes away, max 30 s)
  /slow-body      sends the head and half the body, then stalls
  /headers        several headers, mixed case, repeated Set-Cookie
  /echo           body = the raw request (head + body)
  /big?n=N        N bytes of body
  /interim        a 100 Continue before the 200
  /gzip           gzip-encoded body
  /nocontent      204
  /close-after    200 with length, then the server closes the keep-alive connection
  /login          302 to /echo setting cookies sid and theme; /logout deletes sid
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import gevent
import pytest
from gevent import ssl
from gevent.server import StreamServer

MAX_REQUESTS_PER_CONN = 100_000


@dataclass
class ServerStats:
    connections: int = 0
    tls_resumed: int = 0
    tls_full: int = 0
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, target, raw)

    def reset(self) -> None:
        self.connections = self.tls_resumed = self.tls_full = 0
        self.requests.clear()


class CannedServer:
    """A gevent StreamServer on 127.0.0.1 answering the routes above; optional TLS."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.stats = ServerStats()
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self._open: set[socket.socket] = set()

    def start(self) -> CannedServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(timeout=1)
        for s in list(self._open):
            s.close()

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- connection handling ----------------------------------------------------------
    def _handle(self, sock: socket.socket, _addr: object) -> None:
        self.stats.connections += 1
        self._open.add(sock)
        try:
            sock.settimeout(30)
            if self.ssl_context is not None:
                try:
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
                except (OSError, ValueError):
                    return
                self._open.add(sock)
                if sock.session_reused:
                    self.stats.tls_resumed += 1
                else:
                    self.stats.tls_full += 1
            self._serve(sock)
        except OSError:
            pass
        finally:
            self._open.discard(sock)
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        buf = b""
        for _ in range(MAX_REQUESTS_PER_CONN):
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            length = int(hdrs.get("content-length", "0"))
            while len(buf) < length:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            body, buf = buf[:length], buf[length:]
            raw = head + b"\r\n\r\n" + body
            if len(self.stats.requests) < 10_000:
                self.stats.requests.append((method, target, raw))
            if not self._respond(sock, method, target, raw, hdrs):
                return
            if hdrs.get("connection", "").lower() == "close":
                return

    def _respond(self, sock: socket.socket, method: str, target: str, raw: bytes, hdrs: dict[str, str]) -> bool:
        """Send the canned answer; False closes the connection."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        send = sock.sendall

        def reply(status: str, body: bytes = b"", extra: str = "", ctype: str = "text/plain") -> None:
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            send(head.encode() + (b"" if method == "HEAD" else body))

        if path in ("/", "/cl"):
            reply("200 OK", b"hello")
        elif path == "/chunked":
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n1\r\n \r\n5;ext=1\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n")
        elif path == "/close":
            send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
            return False
        elif path == "/http10":
            send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold-style")
            return False
        elif path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            if n <= 0:
                reply("200 OK", b"landed")
            else:
                reply("302 Found", b"", f"Location: /redirect/{n - 1}\r\n")
        elif path == "/see-other":
            reply("303 See Other", b"", "Location: /echo\r\n")
        elif path == "/goto":
            reply("302 Found", b"", f"Location: {query['url'][0]}\r\n")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            reason = {404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}.get(code, "Status")
            reply(f"{code} {reason}", b"status body")
        elif path == "/reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif path == "/hang":
            raw_sock = socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM)  # peek below TLS
            try:
                for _ in range(300):
                    gevent.sleep(0.05)
                    try:
                        if raw_sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                            return False
                    except BlockingIOError:
                        pass
            except OSError:
                pass
            finally:
                raw_sock.close()
            return False
        elif path == "/slow-body":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
            gevent.sleep(5)
            return False
        elif path == "/headers":
            send(b"HTTP/1.1 200 OK\r\ncontent-TYPE: application/json; charset=utf-8\r\n"
                 b"X-Multi: a\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nx-multi: b\r\n"
                 b"X-Folded: one\r\n two\r\nContent-Length: 11\r\n\r\n{\"k\": \"v\"}\n")
        elif path == "/echo":
            reply("200 OK", raw)
        elif path == "/big":
            reply("200 OK", b"x" * int(query["n"][0]))
        elif path == "/interim":
            send(b"HTTP/1.1 100 Continue\r\n\r\n")
            reply("200 OK", b"final")
        elif path == "/gzip":
            reply("200 OK", gzip.compress(b"unzipped text"), "Content-Encoding: gzip\r\n")
        elif path == "/nocontent":
            send(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif path == "/login":
            reply("302 Found", b"", "Location: /echo\r\nSet-Cookie: sid=abc123; Path=/; HttpOnly\r\n"
                  "set-cookie: theme=dark\r\n")
        elif path == "/logout":
            reply("200 OK", b"bye", "Set-Cookie: sid=; Max-Age=0\r\n")
        elif path == "/close-after":
            reply("200 OK", b"bye")
            return False
        else:
            reply("404 Not Found", b"no route")
        return True


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed EC certificate for 127.0.0.1 and localhost (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loadgen test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def refused_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeRecorder:
    """Collects record() calls: a stand-in for the stats sink (not for the network)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, int, str | None, int]] = []
        self.phases: list[tuple[int, int, tuple[int, int, int] | None]] = []  # (ttfb, body, setup) per call

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None:
        self.calls.append((method, name, latency_us, nbytes, error, queued_us))
        self.phases.append((ttfb_us, body_us, setup))

    def record_exception(self, where: str, exc: BaseException) -> None:  # pragma: no cover
        self.calls.append(("EXC", where, 0, 0, repr(exc), 0))

    @property
    def errors(self) -> list[str | None]:
        return [c[4] for c in self.calls]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def http_server() -> Iterator[CannedServer]:
    srv = CannedServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[CannedServer]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, tls_files))
    srv = CannedServer(ctx).start()
    yield srv
    srv.stop()


@pytest.fixture()
def recorder() -> FakeRecorder:
    return FakeRecorder()


@pytest.fixture()
def make_server(tls_files: tuple[Path, Path]) -> Iterator[object]:
    """Factory for extra servers (`make_server(tls=False)`), stopped after the test."""
    servers: list[CannedServer] = []

    def make(tls: bool = False, **ctx_options: object) -> CannedServer:
        ctx = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*map(str, tls_files))
            for k, v in ctx_options.items():
                setattr(ctx, k, v)
        srv = CannedServer(ctx).start()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


@pytest.fixture()
def closed_port() -> int:
    return refused_port()
