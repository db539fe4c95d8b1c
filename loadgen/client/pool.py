"""Connection pools: per user (the default) or shared by all users per origin.

A pool hands out a `Connection` for an `Origin` and takes it back. The opener is a callable
`open(origin, connect_timeout, read_timeout) -> Connection` supplied by the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from gevent.lock import Semaphore

from .connection import Connection, Origin

Opener = Callable[[Origin, "float | None", "float | None"], Connection]


class PoolTimeout(TimeoutError):
    """No connection of a shared pool became free in time."""


class UserPool:
    """One user's keep-alive connections, at most `max_idle` kept per origin."""

    __slots__ = ("_idle", "_open", "max_idle", "idle_timeout")

    def __init__(self, opener: Opener, max_idle: int = 10, idle_timeout: float = 60.0) -> None:
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._open = opener
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout if idle_timeout > 0 else float("inf")  # 0 = never reap

    def acquire(self, origin: Origin, now: float, connect_timeout: float | None, read_timeout: float | None) -> Connection:
        idle = self._idle.get(origin.key)
        while idle:
            conn = idle.pop()
            if now - conn.last_used < self.idle_timeout and conn.sock is not None:
                return conn
            conn.close()
        return self._open(origin, connect_timeout, read_timeout)

    def release(self, conn: Connection, keep: bool, now: float) -> None:
        if keep and conn.sock is not None:
            idle = self._idle.get(conn.origin.key)
            if idle is None:
                idle = self._idle[conn.origin.key] = []
            if len(idle) < self.max_idle:
                conn.last_used = now
                idle.append(conn)
                return
        conn.close()

    def discard(self, conn: Connection) -> None:
        conn.close()

    def reap(self, now: float) -> int:
        """Close connections idle for longer than `idle_timeout`; returns how many."""
        n = 0
        for idle in self._idle.values():
            fresh = [c for c in idle if now - c.last_used < self.idle_timeout]
            for c in idle:
                if now - c.last_used >= self.idle_timeout:
                    c.close()
                    n += 1
            idle[:] = fresh
        return n

    def close(self) -> None:
        for idle in self._idle.values():
            for c in idle:
                c.close()
            idle.clear()
        self._idle.clear()

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())


class SharedPool:
    """At most `size` connections to one origin, shared by every user of the process."""

    def __init__(self, origin: Origin, size: int, opener: Opener, idle_timeout: float = 60.0) -> None:
        self.origin = origin
        self.size = size
        self._open = opener
        self.idle_timeout = idle_timeout if idle_timeout > 0 else float("inf")  # 0 = never reap
        self._idle: list[Connection] = []
        self._slots = Semaphore(size)

    def acquire(self, origin: Origin, now: float, connect_timeout: float | None, read_timeout: float | None) -> Connection:
        slots = self._slots
        if not slots.acquire(blocking=False):
            wait = connect_timeout
            if not slots.acquire(timeout=wait):
                raise PoolTimeout(f"no free connection in the shared pool of {self.size} within {wait} s")
        try:
            idle = self._idle
            while idle:
                conn = idle.pop()
                if now - conn.last_used < self.idle_timeout and conn.sock is not None:
                    return conn
                conn.close()
            return self._open(origin, connect_timeout, read_timeout)
        except BaseException:
            slots.release()
            raise

    def release(self, conn: Connection, keep: bool, now: float) -> None:
        if keep and conn.sock is not None:
            conn.last_used = now
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    def discard(self, conn: Connection) -> None:
        conn.close()
        self._slots.release()

    def reap(self, now: float) -> int:
        idle = self._idle
        stale = [c for c in idle if now - c.last_used >= self.idle_timeout]
        for c in stale:
            idle.remove(c)
            c.close()
        return len(stale)

    def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()

    def idle_count(self) -> int:
        return len(self._idle)


class SharedPools:
    """The shared pools of one factory, one per origin, behind the same acquire/release API."""

    def __init__(self, size: int, opener: Opener, idle_timeout: float = 60.0) -> None:
        self.size = size
        self._open = opener
        self.idle_timeout = idle_timeout
        self.pools: dict[tuple[str, str, int], SharedPool] = {}

    def get(self, origin: Origin) -> SharedPool:
        pool = self.pools.get(origin.key)
        if pool is None:
            pool = self.pools[origin.key] = SharedPool(origin, self.size, self._open, self.idle_timeout)
        return pool

    def acquire(self, origin: Origin, now: float, connect_timeout: float | None, read_timeout: float | None) -> Connection:
        return self.get(origin).acquire(origin, now, connect_timeout, read_timeout)

    def release(self, conn: Connection, keep: bool, now: float) -> None:
        self.get(conn.origin).release(conn, keep, now)

    def discard(self, conn: Connection) -> None:
        self.get(conn.origin).discard(conn)

    def reap(self, now: float) -> int:
        return sum(p.reap(now) for p in self.pools.values())

    def close(self) -> None:
        for p in self.pools.values():
            p.close()


def now() -> float:
    """The pools' clock (the same one the session times requests with)."""
    return perf_counter()
