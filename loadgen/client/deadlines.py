"""Read deadlines without a gevent Timeout per socket wait.

A gevent socket with a timeout creates, starts and cancels a timer on every blocking wait,
which costs ~20% of a keep-alive request on loopback. Connections instead note a deadline
while a request is in flight; one greenlet per factory checks the in-flight set every
`tick` seconds and closes the sockets that are overdue (the blocked reader then gets an
error, which the connection reports as `ReadTimeout`). Timeouts fire within one tick late.
"""

from __future__ import annotations

from time import perf_counter
from typing import Protocol

import gevent

MIN_TICK = 0.005
MAX_TICK = 0.1


class Expirable(Protocol):
    deadline: float

    def expire(self) -> None: ...


class ReadDeadlines:
    """Expires in-flight connections whose deadline has passed."""

    def __init__(self) -> None:
        self.inflight: set[Expirable] = set()
        self.tick = MAX_TICK
        self._greenlet: gevent.Greenlet | None = None
        self.closed = False

    def ensure_tick(self, timeout: float | None) -> None:
        """Make the check interval fine enough for `timeout` (a quarter of it) and start."""
        if timeout is not None:
            tick = max(MIN_TICK, min(MAX_TICK, timeout / 4))
            if tick < self.tick:
                self.tick = tick
        if self._greenlet is None and not self.closed:
            self._greenlet = gevent.spawn(self._run)

    def check(self, now: float | None = None) -> int:
        """Expire every overdue connection now; returns how many."""
        if now is None:
            now = perf_counter()
        overdue = [c for c in self.inflight if c.deadline <= now]
        for c in overdue:
            self.inflight.discard(c)
            c.expire()
        return len(overdue)

    def _run(self) -> None:
        while not self.closed:
            gevent.sleep(self.tick)
            if self.inflight:
                self.check()

    def close(self) -> None:
        self.closed = True
        g, self._greenlet = self._greenlet, None
        if g is not None:
            g.kill(block=False)
