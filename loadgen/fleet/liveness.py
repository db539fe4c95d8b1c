"""When a worker counts as silent, on the master's side (pure: the caller passes the time).

A worker is silent when no frame from it has been received for the heartbeat timeout. Time the master
itself did not run (a SIGSTOP, a VM pause, an event loop held up) is not the worker's silence: a check that
comes late credits every worker with the gap, so a master that wakes up does not declare its fleet lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Watched(Protocol):
    last_seen: float


class Liveness:
    def __init__(self, timeout: float, period: float, now: float) -> None:
        self.timeout = timeout
        self.period = period  # how often ``check`` is meant to run
        self._last_check = now

    def check(self, peers: Iterable[Watched], now: float) -> tuple[float, float] | None:
        """Credit a late check's gap to every peer; returns the master's own pause (start, end) if there was one."""
        gap = now - self._last_check
        self._last_check = now
        if gap <= max(4 * self.period, self.timeout / 2):
            return None
        credit = gap - self.period
        for peer in peers:
            peer.last_seen += credit
        return now - gap, now

    def silent(self, peer: Watched, now: float) -> bool:
        return now - peer.last_seen > self.timeout
