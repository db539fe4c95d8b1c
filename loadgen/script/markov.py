"""``MarkovTaskSet``: tasks as states of a Markov chain, ``@transition``/``@transitions`` their weighted
edges (Locust's semantics). The chain starts at the first task declared and is checked when the class is
defined: every edge must lead to a task of the class that has transitions itself, and no task may be tagged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, ClassVar

from loadgen.script.tags import TAGS_ATTRIBUTE
from loadgen.script.task_tables import TaskEntry
from loadgen.script.tasksets import TaskSet

TRANSITIONS_ATTRIBUTE = "transitions"  # Locust's attribute name


class NoMarkovTasksError(Exception):
    """A MarkovTaskSet with no ``@transition`` task."""


class InvalidTransitionError(Exception):
    """A transition to a name that is not a task of the class."""


class NonMarkovTaskTransitionError(Exception):
    """A transition to a method without transitions of its own."""


class MarkovTaskTagError(Exception):
    """``@tag`` on a Markov task (it could cut the chain)."""


def transition(func_name: str, weight: int = 1) -> Callable[[Any], Any]:
    """An edge from the decorated task to ``func_name``, taken with ``weight`` among the task's edges."""
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
        raise ValueError(f"@transition({func_name!r}, {weight!r}): the weight must be a whole number >= 1")

    def mark(func: Any) -> Any:
        edges = dict(getattr(func, TRANSITIONS_ATTRIBUTE, {}))
        edges[func_name] = weight
        setattr(func, TRANSITIONS_ATTRIBUTE, edges)
        return func

    return mark


def transitions(weights: dict[str, int] | list[tuple[str, int] | str]) -> Callable[[Any], Any]:
    """Several edges at once: ``{"name": weight}``, or a list of names and ``(name, weight)`` pairs."""
    pairs = weights.items() if isinstance(weights, dict) else \
        [item if isinstance(item, tuple) else (item, 1) for item in weights]

    def mark(func: Any) -> Any:
        for name, weight in pairs:
            func = transition(name, weight)(func)
        return func

    return mark


class MarkovTaskSet(TaskSet):
    """Each task, once run, moves the chain along one of its transitions, chosen by weight."""

    abstract: ClassVar[bool] = True
    _first: ClassVar[str] = ""
    _chain: ClassVar[dict[str, list[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "abstract" not in cls.__dict__:
            cls.abstract = False
        if not cls.abstract:
            cls._chain, cls._first = _checked_chain(cls)
        super().__init_subclass__(**kwargs)

    @classmethod
    def _build_table(cls) -> list[TaskEntry]:
        return [(f"{cls.__name__}.{name}", getattr(cls, name)) for name in cls._chain]

    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self._current = self._first

    def next_task(self) -> TaskEntry:
        if self._queue:
            return self._queue.popleft()
        name = self._current
        edges = self._chain[name]
        self._current = random.choice(edges)
        return f"{type(self).__name__}.{name}", getattr(type(self), name)


def _checked_chain(cls: type) -> tuple[dict[str, list[str]], str]:
    """The chain (each task's successors, repeated by weight) and its first task; raises on a broken chain."""
    tasks = {name: value for name, value in vars(cls).items()
             if callable(value) and hasattr(value, TRANSITIONS_ATTRIBUTE)}
    if not tasks:
        raise NoMarkovTasksError(f"{cls.__name__} has no Markov tasks: decorate methods with @transition")
    chain: dict[str, list[str]] = {}
    for name, func in tasks.items():
        if name == "run":
            raise InvalidTransitionError(f"{cls.__name__}.run cannot be a Markov task: rename it")
        if getattr(func, TAGS_ATTRIBUTE, None):
            raise MarkovTaskTagError(f"{cls.__name__}.{name} is tagged: tags are not supported on Markov tasks")
        successors: list[str] = []
        for dest, weight in getattr(func, TRANSITIONS_ATTRIBUTE).items():
            target = getattr(cls, dest, None)
            if target is None:
                raise InvalidTransitionError(
                    f"{cls.__name__}.{name} has a transition to {dest!r}, which is not an attribute of the class")
            if not hasattr(target, TRANSITIONS_ATTRIBUTE):
                raise NonMarkovTaskTransitionError(
                    f"{cls.__name__}.{name} has a transition to {dest!r}, which has no transitions of its own: "
                    f"decorate {dest} with @transition")
            successors.extend([dest] * int(weight))
        chain[name] = successors
    first = next(iter(tasks))
    reached = {first}
    todo = [first]
    while todo:
        for dest in chain[todo.pop()]:
            if dest not in reached:
                reached.add(dest)
                todo.append(dest)
    unreachable = sorted(set(chain) - reached)
    if unreachable:
        logging.getLogger("loadgen").warning("%s: Markov tasks never reached from %s: %s", cls.__name__, first,
                                             ", ".join(unreachable))
    return chain, first
