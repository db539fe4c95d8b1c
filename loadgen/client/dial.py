"""Dialing a new connection: DNS (through the cache), TCP connect, and the TLS handshake.

Through a proxy (`Origin.proxy`) the connection goes to the proxy, and an https origin gets a CONNECT
tunnel before its handshake (the tunnel's exchange counts as connect time). A handshake offers the cached TLS session for the origin and holds one of the process-wide
`HANDSHAKES` slots; every socket that connects is counted as opened, and as closed again if
the tunnel or the handshake then fails.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

import gevent
from gevent import socket as gsocket
from gevent.lock import BoundedSemaphore

from .counters import COUNTERS
from .errors import ConnectTimeout, ProxyError
from .eyeballs import open_socket, race
from .proxies import connect_request, tunnel_refusal

if TYPE_CHECKING:
    from gevent import ssl

    from .dns import DnsCache
    from .proxies import Proxy
    from .tls import TLSSessionCache
    from .urls import Origin

TLSKey = tuple[str, int, str | None]
"""What the TLS session cache is keyed by: (host, port, server name)."""

MAX_CONCURRENT_HANDSHAKES = 256
# a handshake holds ~50 KB of OpenSSL buffers: bound how many run at once, so a connect storm
# (thousands of users starting together) cannot pile them up while the CPU catches up
HANDSHAKES = BoundedSemaphore(MAX_CONCURRENT_HANDSHAKES)


def dial(
    origin: Origin,
    dns: DnsCache,
    connect_timeout: float | None,
    ssl_context: ssl.SSLContext | None = None,
    tls_cache: TLSSessionCache | None = None,
) -> tuple[gsocket.socket, TLSKey | None, tuple[int, int, int]]:
    """Resolve, connect and (https) handshake, offering a cached TLS session.

    Returns the socket, without a timeout (reads are bounded by the connection's watchdog), the
    TLS session cache key for https (None for http), and how long each step took: (DNS, connect,
    TLS) in microseconds, -1 for a step not paid (an address literal or a cached answer; http)."""
    started = perf_counter()
    proxy = origin.proxy
    host, port = (origin.host, origin.port) if proxy is None else (proxy.host, proxy.port)
    if connect_timeout is None:
        addrs = dns.addresses(host, port)
    else:
        addrs = []
        with gevent.Timeout(connect_timeout, False):
            addrs = dns.addresses(host, port)
        if not addrs:
            raise ConnectTimeout(f"DNS lookup of {host} timed out after {connect_timeout} s")
    resolved = perf_counter()
    dns_us = int((resolved - started) * 1_000_000) if dns.paid else -1
    try:
        sock = _connect(host, port, addrs, connect_timeout)
    except OSError as exc:
        if proxy is None:
            raise
        raise ProxyError(f"cannot connect to proxy {proxy.url}: {type(exc).__name__}: {exc}") from None
    tls_us = -1
    try:
        COUNTERS.opened += 1
        if proxy is not None and origin.tls:
            try:
                open_tunnel(sock, origin, proxy, connect_timeout)
            except BaseException:
                COUNTERS.closed += 1
                raise
        connected = perf_counter()  # through a proxy: with the CONNECT exchange
        tls_key: TLSKey | None = None
        if origin.tls:
            assert ssl_context is not None
            tls_key = (origin.host, origin.port, origin.host)
            sock = _handshake(sock, origin, tls_key, connect_timeout, ssl_context, tls_cache)
            if sock.session_reused:
                COUNTERS.tls_resumed += 1
            else:
                COUNTERS.tls_full += 1
            tls_us = int((perf_counter() - connected) * 1_000_000)
        sock.settimeout(None)  # reads are bounded by the watchdog
    except BaseException:
        sock.close()
        raise
    return sock, tls_key, (dns_us, int((connected - resolved) * 1_000_000), tls_us)


def _connect(host: str, port: int, addrs: list[str], connect_timeout: float | None) -> gsocket.socket:
    """A TCP connection to `addrs` (one: directly; several: Happy Eyeballs, `eyeballs.race`)."""
    if len(addrs) > 1:
        return race(host, port, addrs, connect_timeout)
    try:
        return open_socket(addrs[0], port, connect_timeout)
    except TimeoutError:
        raise ConnectTimeout(f"connect to {host}:{port} ({addrs[0]}) timed out after {connect_timeout} s") from None


def open_tunnel(sock: gsocket.socket, origin: Origin, proxy: Proxy, connect_timeout: float | None) -> None:
    """Ask `proxy` (connected on `sock`) for a tunnel to `origin`, within the connect timeout."""
    sock.settimeout(connect_timeout)
    try:
        sock.sendall(connect_request(origin.host, origin.port, proxy))
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                raise ProxyError(f"proxy {proxy.url} closed the connection before answering CONNECT")
            head += data
            if len(head) > 65536:
                raise ProxyError(f"proxy {proxy.url} sent a CONNECT answer head larger than 64 KiB")
    except TimeoutError:
        raise ConnectTimeout(f"proxy {proxy.url} did not open a tunnel to {origin.host_header} within "
                             f"{connect_timeout} s") from None
    refusal = tunnel_refusal(head)
    if refusal is not None:
        raise ProxyError(f"{refusal} (CONNECT {origin.host_header} via {proxy.url})")
    if not head.endswith(b"\r\n\r\n"):
        raise ProxyError(f"proxy {proxy.url} sent bytes after its CONNECT answer")


def _handshake(
    sock: gsocket.socket,
    origin: Origin,
    tls_key: TLSKey,
    connect_timeout: float | None,
    ssl_context: ssl.SSLContext,
    tls_cache: TLSSessionCache | None,
) -> gsocket.socket:
    """Wrap the connected `sock` in TLS, holding a handshake slot; on failure, counts it closed."""
    cached = tls_cache.checkout(tls_key, connect_timeout) if tls_cache is not None else None
    if not HANDSHAKES.acquire(timeout=connect_timeout):
        COUNTERS.closed += 1
        if tls_cache is not None:
            tls_cache.abandon(tls_key)
        raise ConnectTimeout(f"no TLS handshake slot within {connect_timeout} s: the generator is "
                             "saturated with handshakes")
    try:
        # The handshake is the deepest Python stack a user ever reaches, and a greenlet keeps every 4 KiB
        # page of stack it once touched for its lifetime: called here rather than inside SSLSocket.__init__
        # (do_handshake_on_connect), it stays a page shallower, 4 KiB less per HTTPS user (bench/memory.py).
        from .tls import offer_session

        tsock = offer_session(ssl_context, sock, origin.host, cached)
        try:
            tsock.do_handshake()
        except BaseException:
            tsock.close()  # it holds the socket now
            raise
    except BaseException as exc:
        COUNTERS.closed += 1
        if tls_cache is not None:
            tls_cache.abandon(tls_key)
        if isinstance(exc, TimeoutError):
            raise ConnectTimeout(
                f"TLS handshake with {origin.host_header} timed out after {connect_timeout} s"
            ) from None
        raise
    finally:
        HANDSHAKES.release()
    if cached is None and tls_cache is not None:
        tls_cache.handshake_done(tls_key, tsock)
    return tsock

