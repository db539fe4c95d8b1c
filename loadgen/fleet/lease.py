"""A worker's right to run users, and its view of the master's clock (pure: the caller passes the time).

The lease is what keeps a fleet from loading the target twice. A worker may run users only until
``sent + duration``, where ``sent`` is when it sent the newest heartbeat the master has answered. The
master hears that heartbeat no earlier than it was sent, and hands a silent worker's users to the others
only ``heartbeat_timeout`` after the last frame it heard. With ``duration`` a margin below that timeout,
a cut-off worker has stopped its users before anyone else starts them, whichever way the link failed.
"""

from __future__ import annotations

import math

LEASE_MARGIN = 1.0  # seconds between a lapsed lease and the master giving the users away
CLOCK_SAMPLES = 16


def lease_duration(heartbeat_timeout: float, heartbeat_interval: float) -> float:
    """The lease a master grants: its loss timeout minus the margin, and at least two heartbeats."""
    return max(heartbeat_timeout - LEASE_MARGIN, 2 * heartbeat_interval)


def check_timeouts(heartbeat_timeout: float, heartbeat_interval: float) -> str | None:
    """Why these master timeouts cannot fence a lost worker in time, or None when they can."""
    if heartbeat_timeout < 2 * heartbeat_interval + LEASE_MARGIN:
        return (f"--heartbeat-timeout {heartbeat_timeout:g} s is too short for heartbeats every "
                f"{heartbeat_interval:g} s: give at least {2 * heartbeat_interval + LEASE_MARGIN:g} s")
    return None


class Lease:
    """Renewed by each answered heartbeat; ``valid`` is False once the newest answer is too old."""

    __slots__ = ("duration", "until", "seq", "_sent")

    def __init__(self, duration: float = 2.0) -> None:
        self.duration = duration
        self.until = -math.inf
        self.seq = 0
        self._sent: dict[int, float] = {}

    def beat(self, now: float) -> int:
        """A heartbeat goes out: its sequence number."""
        self.seq += 1
        self._sent[self.seq] = now
        stale = self.seq - 64
        if stale in self._sent:
            del self._sent[stale]
        return self.seq

    def answered(self, seq: int, duration: float) -> float | None:
        """The master answered heartbeat ``seq``: extend the lease (or end it: a negative ``duration``);
        returns when that heartbeat was sent."""
        sent = self._sent.get(seq)
        if sent is None:
            return None
        if duration < 0:
            self.until = -math.inf  # denied: the master (or the hub) does not count us in, yet: it may answer
            return sent  # this heartbeat again, with a lease, as soon as it can
        for old in [s for s in self._sent if s <= seq]:
            del self._sent[old]
        if duration > 0:
            self.duration = duration
        self.until = max(self.until, sent + self.duration)
        return sent

    def deny(self) -> None:
        """The master (or this machine's hub) says stop now."""
        self.until = -math.inf

    def valid(self, now: float) -> bool:
        return now <= self.until

    def revoke(self) -> None:
        """A new master or a dropped test: nothing earlier counts."""
        self.until = -math.inf
        self._sent.clear()


class MasterClock:
    """The master's clock as seen from here: ``local + offset``, the offset taken from the round trip with the
    smallest delay among the last few (NTP's idea: the shortest trip has the least asymmetry)."""

    __slots__ = ("offset", "delay", "_samples")

    def __init__(self) -> None:
        self.offset = 0.0
        self.delay = math.inf
        self._samples: list[tuple[float, float]] = []

    def sample(self, sent: float, master_time: float, received: float) -> None:
        """A request left at ``sent`` (local), the master stamped ``master_time``, the answer came at ``received``."""
        delay = max(0.0, received - sent)
        self._samples.append((delay, master_time - (sent + received) / 2))
        if len(self._samples) > CLOCK_SAMPLES:
            del self._samples[0]
        self.delay, self.offset = min(self._samples)

    def one_way(self, master_time: float, received: float) -> None:
        """A first estimate from a single message (Start): biased by the one-way delay until a round trip."""
        if not self._samples:
            self.offset = master_time - received

    def master_time(self, local: float) -> float:
        return local + self.offset
