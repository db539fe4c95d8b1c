"""A worker's deltas until the master has acknowledged them (pure: no sockets).

Each delta gets the next sequence number. Those sent and not yet acknowledged are resent after a
reconnect, or when the acknowledgement stalls; the master drops what it has already merged. Deltas made
while the worker cannot send (its lease lapsed) are never sent until it can, so they alone may be merged
when too many pile up: a merged range is never one the master has partly seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_PENDING = 120  # deltas kept one by one; beyond this, unsent neighbours are merged
RESEND_AFTER = 3.0  # seconds an acknowledgement may lag before everything pending is sent again

MergeWire = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class Pending:
    """One delta (or a merged run of them) the master has not acknowledged."""

    __slots__ = ("first", "last", "delta", "start", "end", "final", "sent_at")

    def __init__(self, first: int, last: int, delta: dict[str, Any], start: float, end: float,
                 final: bool) -> None:
        self.first = first
        self.last = last
        self.delta = delta
        self.start = start
        self.end = end
        self.final = final
        self.sent_at: float | None = None


class Outbox:
    """Numbered deltas, kept until acknowledged."""

    def __init__(self, merge: MergeWire, limit: int = MAX_PENDING) -> None:
        self._merge = merge
        self.limit = limit
        self.next_seq = 1
        self.acked = 0
        self.pending: list[Pending] = []
        self.merged = 0  # deltas folded into a neighbour because too many piled up

    def add(self, delta: dict[str, Any], start: float, end: float, final: bool = False) -> Pending:
        item = Pending(self.next_seq, self.next_seq, delta, start, end, final)
        self.next_seq += 1
        self.pending.append(item)
        if len(self.pending) > self.limit:
            self._compact()
        return item

    def acknowledge(self, upto: int) -> None:
        """The master has merged every delta up to ``upto``."""
        if upto <= self.acked:
            return
        self.acked = upto
        self.pending = [p for p in self.pending if p.last > upto]

    def due(self, now: float, reconnected: bool = False) -> list[Pending]:
        """What to send now, oldest first: the never-sent ones, and everything after a reconnect or a stalled
        acknowledgement."""
        stale = any(p.sent_at is not None and now - p.sent_at > RESEND_AFTER for p in self.pending)
        if reconnected or stale:
            return list(self.pending)
        return [p for p in self.pending if p.sent_at is None]

    @property
    def final_acknowledged(self) -> bool:
        return not any(p.final for p in self.pending)

    def _compact(self) -> None:
        """Merge the oldest pair of adjacent never-sent deltas (the final one stays on its own)."""
        items = self.pending
        for index in range(len(items) - 1):
            a, b = items[index], items[index + 1]
            if a.sent_at is None and b.sent_at is None and not a.final and not b.final:
                merged = Pending(a.first, b.last, self._merge(a.delta, b.delta), a.start, b.end, False)
                items[index:index + 2] = [merged]
                self.merged += 1
                return
