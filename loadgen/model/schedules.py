"""Schedules: the load target at each moment of a test (pure)."""

from __future__ import annotations

from typing import Protocol

from loadgen.model.stages import Stage, stage_target
from loadgen.model.targets import LoadTarget, RateTarget, UsersTarget

UNLIMITED_SPAWN_RATE = 1e9


class Schedule(Protocol):
    """What the controller asks every tick; ``None`` ends the test."""

    @property
    def ramps(self) -> bool:
        """Whether the target moves between ticks (the controller then re-reads it every 0.2 s)."""
        ...

    def target_at(self, elapsed: float) -> LoadTarget | None: ...


class Steady:
    """One target for the whole test (the command line's ``-u``/``--arrival-rate``, or a live change)."""

    ramps = False

    def __init__(self, target: LoadTarget) -> None:
        self.target = target

    def target_at(self, elapsed: float) -> LoadTarget:
        return self.target


class StageRamp:
    """``--stages``: a linear ramp of users (closed model) or of the arrival rate (open model)."""

    ramps = True

    def __init__(self, stages: tuple[Stage, ...], open_model: bool, spawn_rate: float) -> None:
        self.stages = list(stages)
        self.open_model = open_model
        self.spawn_rate = spawn_rate if spawn_rate > 0 else UNLIMITED_SPAWN_RATE

    def target_at(self, elapsed: float) -> LoadTarget | None:
        value = stage_target(self.stages, elapsed)
        if value is None:
            return None
        if self.open_model:
            return RateTarget(value)
        return UsersTarget(round(value), self.spawn_rate)
