"""Connection pools: per user (the default) or shared by all users per origin.

A pool hands out a `Connection` for an `Origin` and takes it back. The opener is a callable
`open(origin, connect_timeout, read_timeout) -> Connection` supplied by the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Protocol

from gevent.lock import Semaphore

from .connection import Connection
from .counters import COUNTERS
from .urls import Origin

CHECK_IDLE_AFTER = 0.05
"""A connection whose previous request started longer ago is checked (one poll) before reuse: the
server may have closed it meanwhile. A user in a tight loop comes back sooner and pays nothing."""


def reusable(conn: Connection, now: float, idle_timeout: float) -> bool:
    """Whether a pooled connection can carry the next request: not past our idle timeout or the
    server's Keep-Alive timeout, and (unless it was used a moment ago) not closed by the server
    meanwhile; a connection the server dropped is counted (`idle_dropped`), never failed as a request.
    Idle time counts from the start of the connection's previous request (`last_used`)."""
    idle = now - conn.last_used
    if idle >= idle_timeout or idle >= conn.idle_limit or conn.sock is None:
        return False
    if idle > CHECK_IDLE_AFTER and conn.is_dropped():
        COUNTERS.idle_dropped += 1
        return False
    return True

def acquire_live(pool: ConnectionPool, origin: Origin, now: float, connect_timeout: float | None,
                 read_timeout: float | None) -> Connection:
    """`pool.acquire`, for a request that must not meet a closed connection (a POST is never sent twice):
    a reused connection is checked (one poll) however recently it was used, and one the server already
    closed is dropped (counted as `idle_dropped`) for the next. Bounded: a pool holds few idle ones."""
    for _ in range(64):
        conn = pool.acquire(origin, now, connect_timeout, read_timeout)
        if not conn.requests or not conn.is_dropped():
            return conn
        COUNTERS.idle_dropped += 1
        pool.discard(conn)
    return pool.acquire(origin, now, connect_timeout, read_timeout)


Opener = Callable[[Origin, "float | None", "float | None"], Connection]


class PoolTimeout(TimeoutError):
    """No connection of a shared pool became free in time."""


class ConnectionPool(Protocol):
    """What a session asks of its pool (per user, or shared by the users of a process)."""

    def acquire(self, origin: Origin, now: float, connect_timeout: float | None,
                read_timeout: float | None) -> Connection: ...

    def release(self, conn: Connection, keep: bool, now: float) -> None: ...

    def discard(self, conn: Connection) -> None: ...

    def reap(self, now: float) -> int: ...

    def close(self) -> None: ...


class UserPool:
    """One user's keep-alive connections, at most `max_idle` kept per origin.

    The idle connections are one flat list (most users talk to one origin and hold one
    connection): no dict of lists per user.
    """

    __slots__ = ("_idle", "_open", "max_idle", "idle_timeout")

    def __init__(self, opener: Opener, max_idle: int = 10, idle_timeout: float = 60.0) -> None:
        self._idle: list[Connection] = []
        self._open = opener
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout if idle_timeout > 0 else float("inf")  # 0 = never reap

    def acquire(self, origin: Origin, now: float, connect_timeout: float | None, read_timeout: float | None) -> Connection:
        idle = self._idle
        if idle:
            key = origin.key
            for i in range(len(idle) - 1, -1, -1):  # the most recently used first
                conn = idle[i]
                if conn.origin.key != key:
                    continue
                del idle[i]
                idle_for = now - conn.last_used  # the hot path: used a moment ago, so no poll
                if idle_for < CHECK_IDLE_AFTER and idle_for < conn.idle_limit and idle_for < self.idle_timeout:
                    if conn.sock is not None:
                        return conn
                elif reusable(conn, now, self.idle_timeout):
                    return conn
                conn.close()
        return self._open(origin, connect_timeout, read_timeout)

    def release(self, conn: Connection, keep: bool, now: float) -> None:
        if keep and conn.sock is not None:
            idle = self._idle
            key = conn.origin.key
            if len(idle) < self.max_idle or sum(1 for c in idle if c.origin.key == key) < self.max_idle:
                conn.last_used = now
                idle.append(conn)
                return
        conn.close()

    def discard(self, conn: Connection) -> None:
        conn.close()

    def reap(self, now: float) -> int:
        """Close connections idle for longer than `idle_timeout`; returns how many."""
        idle = self._idle
        if not idle:
            return 0
        timeout = self.idle_timeout
        stale = [c for c in idle if now - c.last_used >= timeout]
        if not stale:
            return 0
        idle[:] = [c for c in idle if now - c.last_used < timeout]
        for c in stale:
            c.close()
        return len(stale)

    def close(self) -> None:
        idle = self._idle
        self._idle = []
        for c in idle:
            c.close()



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
                if reusable(conn, now, self.idle_timeout):
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
