"""Task sets, as Locust defines them: ``TaskSet`` (tasks chosen by weight until ``interrupt()``),
``SequentialTaskSet`` (tasks in declaration order, round and round) and ``InterruptTaskSet``.

A task set never loops by itself: the runner keeps each user's stack of task sets entered and asks the top
one for its next task (``next_task``). So every task of a task set is one task of the user, seen by the
stall watchdog, counted in ``iterations`` and stopped like any other.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, ClassVar

from loadgen.script.task_tables import TaskEntry, build_table, sequence_table, task_name


def _plain_table(cls: type) -> list[TaskEntry]:
    """A class's table with its own names (what subclasses build on)."""
    table: list[TaskEntry] = getattr(cls, "_task_table", [])
    prefix = cls.__name__ + "."
    return [(name[len(prefix):] if name.startswith(prefix) else name, func) for name, func in table]


def qualified(cls: type, table: list[TaskEntry]) -> list[TaskEntry]:
    """Entries named ``TaskSetClass.task`` (error rows and the stall watchdog say where a task is)."""
    return [(f"{cls.__name__}.{name}", func) for name, func in table]


class InterruptTaskSet(Exception):  # noqa: N818 - Locust's name
    """Raised by ``TaskSet.interrupt()``: leave the task set, back to its parent (at once if ``reschedule``)."""

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__(reschedule)
        self.reschedule = reschedule


class TaskSet:
    """A group of tasks a user enters (a task of its parent) and stays in until ``self.interrupt()``."""

    tasks: ClassVar[Any] = None
    wait_time: ClassVar[Any] = None  # None: the user's wait time
    _task_table: ClassVar[list[TaskEntry]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._task_table = cls._build_table()

    @classmethod
    def _build_table(cls) -> list[TaskEntry]:
        return qualified(cls, build_table(cls, _plain_table))

    def __init__(self, parent: Any) -> None:
        self._parent = parent
        self._user = parent.user if isinstance(parent, TaskSet) else parent
        self._queue: deque[TaskEntry] = deque()

    @property
    def user(self) -> Any:
        """The user running this task set."""
        return self._user

    @property
    def parent(self) -> Any:
        """The task set (or user) that entered this one."""
        return self._parent

    @property
    def client(self) -> Any:
        return self._user.client

    @property
    def environment(self) -> Any:
        return self._user.environment

    def on_start(self) -> None:
        """Called when the user enters this task set."""

    def on_stop(self) -> None:
        """Called when the user leaves it (``interrupt()``, or the user stops)."""

    def next_task(self) -> TaskEntry:
        """The next task: a scheduled one first, else one chosen by weight (or by ``get_next_task()`` if the
        class overrides it, as a Locust task set may)."""
        if self._queue:
            return self._queue.popleft()
        if type(self).get_next_task is not TaskSet.get_next_task:
            chosen = self.get_next_task()
            return f"{type(self).__name__}.{task_name(chosen)}", chosen
        table = self._task_table
        if not table:
            raise RuntimeError(f"{type(self).__name__} has no tasks: decorate a method with @task or set tasks")
        return table[0] if len(table) == 1 else random.choice(table)

    def get_next_task(self) -> Any:
        """Locust's hook: the next task (a function or a TaskSet class); override it to choose yourself."""
        return self.next_task()[1]

    def schedule_task(self, task: Any, first: bool = False, *args: Any, **kwargs: Any) -> None:
        """Run ``task`` (a function, a bound method or a TaskSet class) next, or after those already scheduled."""
        entry = (f"{type(self).__name__}.{task_name(task)}", task)
        if first:
            self._queue.appendleft(entry)
        else:
            self._queue.append(entry)

    def interrupt(self, reschedule: bool = True) -> None:
        """Leave this task set; its parent runs its next task at once (``reschedule``) or after its wait."""
        raise InterruptTaskSet(reschedule)

    def wait(self) -> None:
        """Sleep this task set's wait time now (inside a task)."""
        import gevent

        from loadgen.script.pacing import wait_seconds

        owner_wait = type(self).wait_time
        gevent.sleep(wait_seconds(self.wait_time, self) if owner_wait is not None
                     else wait_seconds(self._user.wait_time, self._user))


class SequentialTaskSet(TaskSet):
    """Tasks in the order they are declared (weights ignored except as repeats), round and round."""

    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self._index = 0

    @classmethod
    def _build_table(cls) -> list[TaskEntry]:
        return qualified(cls, sequence_table(cls, _plain_table))

    def next_task(self) -> TaskEntry:
        if self._queue:
            return self._queue.popleft()
        table = self._task_table
        if not table:
            raise RuntimeError(f"{type(self).__name__} has no tasks: decorate a method with @task or set tasks")
        entry = table[self._index % len(table)]
        self._index += 1
        return entry


def is_task_set(task: Any) -> bool:
    return isinstance(task, type) and issubclass(task, TaskSet)
