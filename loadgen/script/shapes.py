"""Load shapes written in a script: ``LoadShape`` subclasses and ``shape(elapsed)`` functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadgen.model.schedules import UNLIMITED_SPAWN_RATE
from loadgen.model.targets import LoadTarget, RateTarget, UsersTarget

SHAPE_RESULTS = "return (users, spawn_rate), a number (users, or the rate with --arrival-rate), or None to stop"


class LoadShape:
    """Subclass and implement ``tick()`` returning ``(users, spawn_rate)``, ``(rate,)`` or ``None`` to stop."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def get_run_time(self) -> float:
        return self.elapsed

    def tick(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


ShapeFunction = Callable[[float], Any]


def to_target(result: Any, open_model: bool, spawn_rate: float) -> LoadTarget | None:
    """A shape's answer as a typed target; ``ValueError`` (with the accepted forms) for anything else."""
    if result is None or isinstance(result, (UsersTarget, RateTarget)):
        return result
    if isinstance(result, (list, tuple)):
        if len(result) == 1:
            result = result[0]
        elif len(result) in (2, 3):  # Locust's (users, spawn_rate[, user_classes])
            users, rate = result[0], result[1]
            classes = _class_names(result[2]) if len(result) == 3 and result[2] else ()
            if _number(users) and _number(rate) and users >= 0 and rate >= 0:
                return UsersTarget(int(users), float(rate) or UNLIMITED_SPAWN_RATE, classes)
            raise ValueError(f"shape returned {result!r}: {SHAPE_RESULTS}")
        else:
            raise ValueError(f"shape returned {result!r}: {SHAPE_RESULTS}")
    if _number(result) and result >= 0:
        return RateTarget(float(result)) if open_model else UsersTarget(int(result), spawn_rate)
    raise ValueError(f"shape returned {result!r}: {SHAPE_RESULTS}")


def _class_names(classes: Any) -> tuple[str, ...]:
    """A shape's ``user_classes``: classes or their names."""
    if isinstance(classes, (str, type)) or not isinstance(classes, (list, tuple, set, frozenset)):
        classes = [classes]
    names = tuple(value if isinstance(value, str) else getattr(value, "__name__", "") for value in classes)
    if not all(names):
        raise ValueError(f"shape returned user_classes {classes!r}: give user classes (or their names)")
    return names


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ShapeSchedule:
    """A script's shape as the controller's schedule: asked every 0.2 s."""

    ramps = True

    def __init__(self, shape: LoadShape | ShapeFunction, open_model: bool, spawn_rate: float,
                 classes: tuple[str, ...] = ()) -> None:
        self.shape = shape
        self.open_model = open_model
        self.spawn_rate = spawn_rate
        self.classes = classes  # the script's user classes: a shape's user_classes must be among them

    def target_at(self, elapsed: float) -> LoadTarget | None:
        shape = self.shape
        if isinstance(shape, LoadShape):
            shape.elapsed = elapsed
            result = shape.tick()
        else:
            result = shape(elapsed)
        target = to_target(result, self.open_model, self.spawn_rate)
        if isinstance(target, UsersTarget) and target.classes and self.classes:
            unknown = [name for name in target.classes if name not in self.classes]
            if unknown:
                raise ValueError(f"shape returned user class {unknown[0]!r}, which this test does not run "
                                 f"(it runs: {', '.join(self.classes)})")
        return target
