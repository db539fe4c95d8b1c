"""Wait-time functions for closed-model users, and fixed-schedule pacing."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from typing import Any

from loadgen.script.timing import IterationTiming

WaitTime = Callable[[Any], float]
GOLDEN = 0.6180339887498949


class _Constant:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, user: Any = None) -> float:
        return self.seconds


class _Between:
    __slots__ = ("low", "high")

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def __call__(self, user: Any = None) -> float:
        return random.uniform(self.low, self.high)


def constant(seconds: float) -> WaitTime:
    """Wait the same time after every task."""
    _check_non_negative("constant", seconds)
    return _Constant(seconds)


def between(low: float, high: float) -> WaitTime:
    """Wait a uniformly random time in [low, high] after every task."""
    _check_non_negative("between", low)
    if high < low:
        raise ValueError(f"between({low}, {high}): the upper bound is below the lower bound; swap them")
    return _Between(low, high)


def wait_seconds(wait_time: Any, user: Any) -> float:
    """Call a wait time: our callables take the user; a method defined on the class is already bound."""
    if inspect.ismethod(wait_time):
        return float(wait_time())
    return float(wait_time(user))


class Pacing:
    """Start tasks on a fixed schedule, one every ``interval`` seconds, whatever each task takes.

    The runner keeps the schedule; calling the object (Locust style) returns the time left until the
    next slot for code that wants it.
    """

    __slots__ = ("interval",)

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def __call__(self, user: Any = None) -> float:
        timing: IterationTiming | None = getattr(user, "timing", None)  # None: called without a user
        left = timing.until_next_slot() if timing is not None else None
        return self.interval if left is None else left

    def __repr__(self) -> str:
        return f"Pacing(interval={self.interval})"


def constant_pacing(seconds: float) -> Pacing:
    """Start a task every ``seconds`` seconds (the task's time counts towards the interval)."""
    if seconds <= 0:
        raise ValueError(f"constant_pacing({seconds}): the interval must be above zero")
    return Pacing(seconds)


def constant_throughput(per_second: float) -> Pacing:
    """Run ``per_second`` tasks a second per user, on a fixed schedule."""
    if per_second <= 0:
        raise ValueError(f"constant_throughput({per_second}): the rate must be above zero")
    return Pacing(1.0 / per_second)


def phase(index: int, interval: float) -> float:
    """Start offset of the ``index``-th user of a class: a low-discrepancy spread over the interval."""
    return ((index * GOLDEN) % 1.0) * interval


def _check_non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name}({value}): wait times cannot be negative")


class _Exponential:
    __slots__ = ("rate",)

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, user: Any = None) -> float:
        return random.expovariate(self.rate)


def poisson(rate: float) -> WaitTime:
    """Waits drawn from an exponential distribution of mean ``1/rate`` s: tasks arrive as a Poisson process."""
    if rate <= 0:
        raise ValueError(f"poisson({rate}): the rate must be above zero")
    return _Exponential(rate)
