"""The load a fleet is asked for at one moment: a number of users, or an arrival rate (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsersTarget:
    """Closed model: this many concurrent users, reached at ``spawn_rate`` users a second."""

    users: int
    spawn_rate: float
    classes: tuple[str, ...] = ()  # only these user classes (a shape's user_classes); empty: every class


@dataclass(frozen=True)
class RateTarget:
    """Open model: start this many iterations a second."""

    rate: float


LoadTarget = UsersTarget | RateTarget
