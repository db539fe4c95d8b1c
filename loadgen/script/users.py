"""The script API: ``User``, ``HttpUser`` and ``@task``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import gevent

from loadgen.client.factory import ClientFactory
from loadgen.script.pacing import WaitTime, constant
from loadgen.script.rest import RestMixin
from loadgen.script.task_tables import build_table
from loadgen.script.tasksets import InterruptTaskSet
from loadgen.script.timing import IterationTiming
from loadgen.stats.recorder import Recorder

TaskFunc = Callable[[Any], Any]


def task(weight: int | Callable = 1) -> Any:
    """Mark a method as a task; ``@task`` or ``@task(weight)``."""
    if callable(weight):
        weight.task_weight = weight.locust_task_weight = 1  # type: ignore[attr-defined]
        return weight
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
        raise ValueError(f"@task({weight!r}): the weight must be a whole number >= 0")

    def mark(func: Callable) -> Callable:
        func.task_weight = func.locust_task_weight = weight  # type: ignore[attr-defined]
        return func

    return mark


class StopUser(Exception):
    """Raise inside a task to stop this user."""


class StopTest(Exception):  # noqa: N818 - Locust's name
    """Raise anywhere in a user to end the whole test (as ``environment.runner.quit()``)."""


class RescheduleTask(Exception):
    """Raise inside a task to end it now (not an error): the user waits, then runs its next task."""


class RescheduleTaskImmediately(Exception):
    """Raise inside a task to end it now (not an error) and run the next task without waiting."""


class UserContext:
    """What the runner gives every user: the recorder, the client factory and defaults."""

    def __init__(self, recorder: Recorder, client_factory: ClientFactory | None = None,
                 host: str | None = None, environment: Any = None) -> None:
        self.recorder = recorder
        self.client_factory = client_factory
        self.host = host
        self.environment = environment  # Locust's Environment view (script/locust_env.py), if built


class User:
    """A simulated user. Subclass it, add ``@task`` methods, set ``wait_time``."""

    abstract: ClassVar[bool] = True
    host: ClassVar[str | None] = None
    weight: ClassVar[float] = 1
    fixed_count: ClassVar[int] = 0
    wait_time: WaitTime = constant(0)
    tasks: ClassVar[list[TaskFunc] | dict[TaskFunc, int] | None] = None
    _task_table: ClassVar[list[tuple[str, TaskFunc]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False
        cls._task_table = build_table(cls, lambda base: getattr(base, "_task_table", []))

    def __init__(self, context: UserContext) -> None:
        self._context = context
        self.recorder = context.recorder
        self.timing = IterationTiming()  # written by the runner, read by the client and measure()

    @property
    def environment(self) -> Any:
        """Locust's ``self.environment``: host, parsed options, runner, stats, events."""
        return self._context.environment

    def context(self) -> dict[str, Any]:
        """Locust's ``context()``: extra keys for this user's request events (override it)."""
        return {}

    def wait(self) -> None:
        """Sleep this user's wait time now (inside a task)."""
        from loadgen.script.pacing import Pacing, wait_seconds

        wait_time = self.wait_time
        gevent.sleep(wait_time.interval if isinstance(wait_time, Pacing) else wait_seconds(wait_time, self))

    def on_start(self) -> None:
        """Called once when the user starts."""

    def on_stop(self) -> None:
        """Called once when the user stops."""

    @contextmanager
    def measure(self, kind: str, name: str, timeout: float | None = None) -> Iterator[None]:
        """Time a block of any client's calls and record it; exceptions (and ``timeout``) are failures, and a
        block cut off from outside (killed at a forced stop, another ``gevent.Timeout``) is *interrupted*.

        Works as ``with self.measure("sqs", "receive"):`` and as a decorator.
        """
        timer = gevent.Timeout(timeout) if timeout else None
        error: str | None = None
        cut_off = False
        start = time.perf_counter()
        if timer is not None:
            timer.start()
        try:
            yield
        except gevent.Timeout as exc:
            if exc is not timer:  # someone else's deadline: cut off, no verdict
                cut_off = True
                raise
            error = f"Timeout: {kind} {name} took longer than {timeout:g}s"
        except (StopUser, StopTest, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):  # control flow
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of user code is data
            error = f"{type(exc).__name__}: {exc}"
        except BaseException:  # GreenletExit (a forced stop, a fence), KeyboardInterrupt: cut off from outside
            cut_off = True
            raise
        finally:
            if timer is not None:
                timer.close()
            if cut_off:
                self.recorder.record_interrupted(kind, name)
            else:
                self.recorder.record(kind, name, int((time.perf_counter() - start) * 1e6), 0, error,
                                     self.timing.take_queued_us())


class HttpUser(User, RestMixin):
    """A user with an HTTP(S) ``client`` (keep-alive by default)."""

    abstract = True
    keep_alive: ClassVar[bool] = True
    connection_pool: ClassVar[str | None] = None
    pool_size: ClassVar[int | None] = None
    pool_manager: ClassVar[Any] = None  # Locust's: a urllib3 PoolManager shared by the class's users

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        manager = cls.__dict__.get("pool_manager")
        if manager is not None:  # one shared pool of its maxsize, as the PoolManager would hold
            cls.connection_pool = "shared"
            cls.pool_size = int(getattr(manager, "connection_pool_kw", {}).get("maxsize") or 10)

    def __init__(self, context: UserContext) -> None:
        super().__init__(context)
        host = context.host or self.host  # -H wins over the class's host, as in Locust
        if not host:
            raise ValueError(
                f"{type(self).__name__} has no host: pass -H/--host or set `host` on the class"
            )
        factory = context.client_factory
        if factory is None:
            raise ValueError(f"{type(self).__name__} needs an HTTP client factory in its context")
        self.client = factory.session(
            host, keep_alive=self.keep_alive, pool=self.connection_pool, pool_size=self.pool_size, timing=self.timing
        )

    def close(self) -> None:
        self.client.close()
