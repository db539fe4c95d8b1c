"""`ClientFactory`: the per-process owner of TLS context, TLS session cache, DNS cache and pools."""

from __future__ import annotations

import weakref
from typing import Any

import gevent

from .connection import Connection, Origin
from .dns import DnsCache, server_resolver
from .pool import SharedPools, UserPool, now
from .session import HttpSession
from .settings import ClientSettings
from .tls import TLSSessionCache, get_context
from .watchdog import Watchdog


class ClientFactory:
    """Builds `HttpSession`s that share one SSLContext, DNS cache and TLS session cache."""

    def __init__(self, settings: ClientSettings | None = None, recorder: Any = None) -> None:
        self.settings = settings = settings or ClientSettings()
        self.recorder = recorder
        self._ssl_context = None
        self.tls_sessions = TLSSessionCache(enabled=settings.tls_resume)
        resolver = server_resolver(settings.dns_server) if settings.dns_server else None
        self.dns = DnsCache(
            ttl=settings.dns_ttl,
            select=settings.dns_select,
            ipv6=settings.dns_ipv6,
            resolver=resolver,
            negative_ttl=settings.dns_negative_ttl,
        )
        self.connections: set[Connection] = set()
        self.watchdog = Watchdog()
        self._shared: dict[int, SharedPools] = {}
        self._sessions: weakref.WeakSet[HttpSession] = weakref.WeakSet()
        self._reaper: gevent.Greenlet | None = None

    @property
    def ssl_context(self) -> Any:
        """The process-wide gevent SSLContext for these settings (built on first https use)."""
        if self._ssl_context is None:
            self._ssl_context = get_context(self.settings)
        return self._ssl_context

    def open_connection(self, origin: Origin, connect_timeout: float | None, read_timeout: float | None) -> Connection:
        """Resolve, connect and handshake a new connection (counted, registered for close_all)."""
        return Connection.open(
            origin,
            self.dns,
            connect_timeout,
            read_timeout,
            self.ssl_context if origin.tls else None,
            self.tls_sessions,
            self.connections,
            self.watchdog,
        )

    def session(
        self, base_url: str, keep_alive: bool = True, pool: str | None = None, pool_size: int | None = None
    ) -> HttpSession:
        """A new session (one per user); `pool` is "user" (own connections) or "shared"."""
        mode = pool or self.settings.pool
        size = pool_size or self.settings.pool_size
        if mode == "shared":
            conn_pool: Any = self._shared.get(size)
            if conn_pool is None:
                conn_pool = self._shared[size] = SharedPools(size, self.open_connection, self.settings.idle_timeout)
            owned = False
        elif mode == "user":
            conn_pool = UserPool(self.open_connection, max_idle=size, idle_timeout=self.settings.idle_timeout)
            owned = True
        else:
            raise ValueError(f"pool must be 'user' or 'shared', not {mode!r}")
        session = HttpSession(self, base_url, keep_alive, conn_pool, owned)
        self._sessions.add(session)
        self._start_reaper()
        return session

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
        self.watchdog = Watchdog()
