"""A user's iteration timing: the pacing slot it waits for and how late its iteration started.

The runner is the only writer (``plan_slot``, ``begin_iteration``). The user's HTTP session and
``measure()`` take the queueing delay with ``take_queued_us()``: the first sample of an open-model
iteration carries it, so its latency counts from the intended start (coordinated omission corrected).
"""

from __future__ import annotations

import time


class IterationTiming:
    __slots__ = ("next_slot", "queued_us")

    def __init__(self) -> None:
        self.next_slot = 0.0  # monotonic time of the next pacing slot; 0 = not paced
        self.queued_us = 0

    def plan_slot(self, at: float) -> None:
        self.next_slot = at

    def begin_iteration(self, queued_us: int) -> None:
        """An open-model iteration starts ``queued_us`` after its intended time."""
        self.queued_us = queued_us if queued_us > 0 else 0

    def take_queued_us(self) -> int:
        """The queueing delay not yet recorded (then 0): called once per recorded sample."""
        queued = self.queued_us
        if queued:
            self.queued_us = 0
        return queued

    def until_next_slot(self) -> float | None:
        """Seconds until the next pacing slot, or None when the user is not paced."""
        if not self.next_slot:
            return None
        return max(0.0, self.next_slot - time.monotonic())
