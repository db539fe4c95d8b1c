"""Where this process sits in a fleet: its slot of N (spreads phases over the fleet), the fleet clock, and
how long it may run users (the worker's lease). A lone ``loadgen run`` is slot 0 of 1, forever."""

from __future__ import annotations

import math


class Placement:
    """Shared by the runner and the arrival scheduler; the worker writes it, they read it."""

    __slots__ = ("slot", "slots", "offset", "run_until")

    def __init__(self) -> None:
        self.slot = 0  # this process's index among ``slots`` processes running the same share
        self.slots = 1
        self.offset = 0.0  # fleet clock minus this process's monotonic clock
        self.run_until = math.inf  # monotonic time after which no new task or iteration may start

    def next_on_grid(self, now: float, interval: float, phase: float) -> float:
        """The first local time at or after ``now`` that is ``phase`` past a multiple of ``interval`` on the
        fleet clock: every process keeps the same grid, so their slots interleave instead of bunching."""
        fleet_now = now + self.offset
        steps = math.ceil((fleet_now - phase) / interval)
        return phase + steps * interval - self.offset
