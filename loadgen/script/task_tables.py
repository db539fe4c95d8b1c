"""Task tables: what a user class or task set runs, one entry per unit of weight (pure).

A table entry is ``(name, task)``; ``task`` is a function taking the user (or task set), or a ``TaskSet``
class. Tables come from ``tasks`` (a list of tasks or ``(task, weight)`` pairs, or a ``{task: weight}`` dict)
and from methods marked ``@task`` (loadgen's ``task_weight`` or Locust's ``locust_task_weight``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TaskEntry = tuple[str, Any]
WEIGHT_ATTRIBUTES = ("task_weight", "locust_task_weight")


def task_name(task: Any) -> str:
    return getattr(task, "__name__", None) or type(task).__name__


def weight_of(value: Any) -> int | None:
    """The ``@task`` weight of a class attribute, or None if it is not a task."""
    if not callable(value):
        return None
    for attribute in WEIGHT_ATTRIBUTES:
        weight = getattr(value, attribute, None)
        if isinstance(weight, int) and not isinstance(weight, bool):
            return weight
    return None


def declared_entries(declared: Any, owner: str) -> list[TaskEntry]:
    """The entries of a ``tasks`` attribute."""
    if declared is None:
        return []
    items: Iterable[Any]
    if isinstance(declared, dict):
        items = declared.items()
    elif isinstance(declared, (list, tuple)):
        items = declared
    else:
        raise TypeError(f"{owner}.tasks must be a list or a dict of tasks, not {type(declared).__name__}")
    entries: list[TaskEntry] = []
    for item in items:
        if isinstance(item, tuple):
            task, weight = item
            entries.extend([(task_name(task), task)] * int(weight))
        elif callable(item):
            entries.append((task_name(item), item))
        else:
            raise TypeError(f"{owner}.tasks holds {item!r}: give functions or TaskSet classes")
    return entries


def build_table(cls: type, base_table: Callable[[type], list[TaskEntry]]) -> list[TaskEntry]:
    """A class's table: its own ``tasks``, then every ``@task`` method of the class and its bases (a method
    overridden in a subclass counts once, with the subclass's weight)."""
    table = declared_entries(cls.__dict__.get("tasks"), cls.__name__)
    if not table:
        for base in cls.__bases__:
            if "tasks" not in base.__dict__:
                continue
            table.extend(entry for entry in base_table(base) if weight_of(entry[1]) is None)
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            weight = weight_of(value)
            if weight is not None:
                table = [(n, f) for n, f in table if n != name]
                table.extend([(name, value)] * weight)
    return table


def sequence_table(cls: type, base_table: Callable[[type], list[TaskEntry]]) -> list[TaskEntry]:
    """A ``SequentialTaskSet``'s table in declaration order: the bases' tasks first, then the class's ``tasks``
    and ``@task`` methods as they appear in its body (a weight repeats a task in place)."""
    table: list[TaskEntry] = []
    for base in cls.__bases__:
        table.extend(base_table(base))
    for name, value in cls.__dict__.items():
        if name == "tasks":
            table.extend(declared_entries(value, cls.__name__))
            continue
        weight = weight_of(value)
        if weight is not None:
            table.extend([(name, value)] * weight)
    return table
