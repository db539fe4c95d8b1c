"""`ClientFactory`: the per-process owner of TLS context, TLS session cache, DNS cache and pools."""

from __future__ import annotations

import ctypes
import ctypes.util
import weakref
from typing import Any

import gevent

from .connection import Connection
from .deadlines import ReadDeadlines
from .dns import DnsCache, server_resolver
from .interfaces import QueueDelay
from .pool import ConnectionPool, SharedPools, UserPool, now
from .session import HttpSession
from .settings import ClientSettings
from .tls import TLSSessionCache, get_context
from .urls import Origin, base_origin, tls_key


class ClientFactory:
    """Builds `HttpSession`s that share one SSLContext, DNS cache and TLS session cache."""

    def __init__(self, settings: ClientSettings | None = None, recorder: Any = None,
                 session_class: type[HttpSession] = HttpSession) -> None:
        self.settings = settings = settings or ClientSettings()
        self.recorder = recorder
        self.session_class = session_class  # a subclass that observes its responses (a Locust script's)
        self._ssl_context = None
        self.tls_sessions = TLSSessionCache(enabled=settings.tls_resume)
        self._tls_caches: dict[tuple[Any, ...], TLSSessionCache] = {}  # per TLS configuration of a request
        resolver = server_resolver(settings.dns_server) if settings.dns_server else None
        self.dns = DnsCache(
            ttl=settings.dns_ttl,
            select=settings.dns_select,
            ipv6=settings.dns_ipv6,
            resolver=resolver,
            negative_ttl=settings.dns_negative_ttl,
        )
        self.connections: set[Connection] = set()
        self.watchdog = ReadDeadlines()
        self._shared: dict[int, SharedPools] = {}
        self._sessions: weakref.WeakSet[HttpSession] = weakref.WeakSet()
        self._reaper: gevent.Greenlet | None = None
        self._base_origins: dict[str, tuple[Origin, str]] = {}
        self._shared_heads: dict[tuple[Any, bool], dict[Any, bytes]] = {}

    @property
    def ssl_context(self) -> Any:
        """The process-wide gevent SSLContext for these settings (built on first https use)."""
        if self._ssl_context is None:
            self._ssl_context = get_context(self.settings)
        return self._ssl_context

    def open_connection(self, origin: Origin, connect_timeout: float | None, read_timeout: float | None) -> Connection:
        """Resolve, connect and handshake a new connection (counted, registered for close_all), with the
        origin's own TLS settings if it has them (a request's ``verify=``/``cert=``)."""
        tls = origin.tls_settings
        sessions: TLSSessionCache | None
        if tls is None:
            context, sessions = (self.ssl_context if origin.tls else None), self.tls_sessions
        else:  # a TLS session belongs to the context that made it: each configuration has its cache
            context = get_context(tls)
            key = tls_key(tls)
            sessions = self._tls_caches.get(key)
            if sessions is None:
                sessions = self._tls_caches[key] = TLSSessionCache(enabled=self.settings.tls_resume)
        return Connection.open(
            origin,
            self.dns,
            connect_timeout,
            read_timeout,
            context,
            sessions,
            self.connections,
            self.watchdog,
        )

    def session(
        self, base_url: str, keep_alive: bool = True, pool: str | None = None, pool_size: int | None = None,
        timing: QueueDelay | None = None,
    ) -> HttpSession:
        """A new session (one per user); `pool` is "user" (own connections) or "shared"."""
        mode = pool or self.settings.pool
        size = pool_size or self.settings.pool_size
        if mode == "shared":
            conn_pool: ConnectionPool | None = self._shared.get(size)
            if conn_pool is None:
                conn_pool = self._shared[size] = SharedPools(size, self.open_connection, self.settings.idle_timeout)
            owned = False
        elif mode == "user":
            conn_pool = UserPool(self.open_connection, max_idle=size, idle_timeout=self.settings.idle_timeout)
            owned = True
        else:
            raise ValueError(f"pool must be 'user' or 'shared', not {mode!r}")
        session = self.session_class(self, base_url, keep_alive, conn_pool, owned, timing)
        self._sessions.add(session)
        self._start_reaper()
        return session

    def base_origin(self, base_url: str) -> tuple[Origin, str]:
        """(Origin, base path) of a base URL, one shared object per URL (thousands of users share one)."""
        found = self._base_origins.get(base_url)
        if found is None:
            found = base_origin(base_url)
            if len(self._base_origins) < 1000:
                self._base_origins[base_url] = found
        return found

    def shared_heads(self, origin_key: Any, keep_alive: bool) -> dict[Any, bytes]:
        """The encoded-head cache shared by sessions of this origin that have no headers or cookies of
        their own (their heads are byte-for-byte the same)."""
        key = (origin_key, keep_alive)
        heads = self._shared_heads.get(key)
        if heads is None:
            if len(self._shared_heads) >= 1000:
                self._shared_heads.clear()
            heads = self._shared_heads[key] = {}
        return heads

    def reap_idle(self) -> int:
        """Close every pooled connection idle for longer than settings.idle_timeout."""
        t = now()
        n = sum(s._pool.reap(t) for s in list(self._sessions) if s._owns_pool)
        return n + sum(p.reap(t) for p in self._shared.values())

    def _start_reaper(self) -> None:
        if self._reaper is None and self.settings.idle_timeout > 0:
            self._reaper = gevent.spawn(self._reap_loop, max(self.settings.idle_timeout / 2, 0.5))

    def _reap_loop(self, every: float) -> None:
        while True:
            gevent.sleep(every)
            self.reap_idle()

    def close_all(self) -> None:
        """Close every socket this factory opened (pooled or in use) and stop the reaper."""
        if self._reaper is not None:
            self._reaper.kill(block=False)
            self._reaper = None
        for s in list(self._sessions):
            s.close()
        for p in self._shared.values():
            p.close()
        for c in list(self.connections):
            c.close()
        self.connections.clear()
        self.watchdog.close()
        self.watchdog = ReadDeadlines()
        release_memory()


_malloc_trim: Any = None


def release_memory() -> bool:
    """Hand freed heap pages back to the OS (glibc's malloc_trim); True if it could.

    Closing 10,000 TLS connections frees ~18 KB each inside OpenSSL, but glibc keeps the pages
    (they sit between live allocations): without this a worker's RSS stays at the previous test's
    peak. Costs a few ms; called once per test, from close_all().
    """
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _malloc_trim = libc.malloc_trim
            _malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
            pass
    if not _malloc_trim:
        return False
    import gc

    gc.collect()  # closed connections caught in reference cycles go first
    _malloc_trim(0)
    return True
