"""The controller's time: real (monotonic, gevent events) or, in tests, a clock that jumps."""

from __future__ import annotations

import time
from typing import Protocol

from gevent.event import Event


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wait(self, event: Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; returns whether it is set."""
        ...


class MonotonicClock:
    """Wall time as it passes."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, event: Event, timeout: float) -> bool:
        return bool(event.wait(max(0.0, timeout)))
