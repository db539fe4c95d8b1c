"""Locust's event hooks: ``events.init.add_listener(fn)``, ``events.request.fire(...)`` and the rest.

One ``Events`` per process (``events``). Who fires what, and where, is the engine's and the control layer's
business (docs/from-locust.md lists each hook's process and moment). ``events.request.fire(...)`` from a
custom client is also *recorded*: it becomes a row of the report like any request of loadgen's own client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from loadgen.script.tasksets import InterruptTaskSet
from loadgen.script.users import RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser

LOG = logging.getLogger("loadgen.events")
CONTROL_FLOW = (StopUser, StopTest, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet)

EVENT_NAMES = (
    "init", "init_command_line_parser", "test_start", "test_stopping", "test_stop", "quitting", "quit",
    "spawning_complete", "reset_stats", "user_error", "report_to_master", "worker_report", "worker_connect",
    "cpu_warning", "heartbeat_sent", "heartbeat_received", "usage_monitor",
)


class EventHook:
    """Listeners called in the order they were added, with keyword arguments only."""

    __slots__ = ("_handlers", "name", "_failures")

    def __init__(self, name: str = "") -> None:
        self._handlers: list[Callable[..., Any]] = []
        self.name = name
        self._failures: dict[int, int] = {}  # id(listener) → times it raised

    def add_listener(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        self._handlers.append(handler)
        return handler

    def remove_listener(self, handler: Callable[..., Any]) -> None:
        self._handlers.remove(handler)

    @property
    def listeners(self) -> int:
        return len(self._handlers)

    def fire(self, *, reverse: bool = False, **kwargs: Any) -> None:
        """Call every listener; a listener's exception is logged and does not stop the others (as Locust)."""
        handlers = reversed(self._handlers) if reverse else list(self._handlers)
        for handler in handlers:
            try:
                handler(**kwargs)
            except CONTROL_FLOW:  # a listener may stop its user or the test, as in Locust
                raise
            except Exception:  # noqa: BLE001 - a broken listener must not end the test
                self._failed(handler)

    def _failed(self, handler: Callable[..., Any]) -> None:
        """Logged with its traceback the first time, then at 10, 100, 1000... times (a listener of every
        request must not flood the log)."""
        count = self._failures[id(handler)] = self._failures.get(id(handler), 0) + 1
        label = getattr(handler, "__name__", repr(handler))
        if count == 1:
            LOG.exception("listener %s of events.%s failed", label, self.name)
        elif str(count).rstrip("0") == "1":
            LOG.error("listener %s of events.%s has failed %d times", label, self.name, count)


class RequestSinkLike(Protocol):
    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None,
               queued_us: int = 0) -> None: ...


class RequestHook(EventHook):
    """``events.request``: ``fire(...)`` records the request (a custom client's) and calls the listeners."""

    __slots__ = ("_sink",)

    def __init__(self, name: str = "request") -> None:
        super().__init__(name)
        self._sink: RequestSinkLike | None = None

    def bind(self, sink: RequestSinkLike | None) -> None:
        """Where fired requests are recorded: this process's recorder (the engine binds it)."""
        self._sink = sink

    def fire(self, *, reverse: bool = False, **kwargs: Any) -> None:
        sink = self._sink
        if sink is not None:
            exception = kwargs.get("exception")
            error = None if exception is None else describe(exception)
            response_time = kwargs.get("response_time") or 0
            record = getattr(sink, "record_quiet", sink.record)  # the listeners are called once, below
            record(str(kwargs.get("request_type", "")), str(kwargs.get("name", "")),
                        int(float(response_time) * 1000), int(kwargs.get("response_length") or 0), error)
        self.notify(**kwargs)

    def notify(self, **kwargs: Any) -> None:
        """Call the listeners only (loadgen's own client has recorded the request already)."""
        if self._handlers:
            EventHook.fire(self, **kwargs)

    @contextmanager
    def measure(self, request_type: str, name: str, response_length: int = 0,
                context: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Time a block and fire it as a request; an exception in it is the request's failure (and is kept)."""
        meta: dict[str, Any] = {"request_type": request_type, "name": name, "response_length": response_length,
                                "context": context or {}, "exception": None, "start_time": time.time()}
        start = time.perf_counter()
        try:
            yield meta
        except Exception as exc:  # noqa: BLE001 - Locust's measure() records the failure and carries on
            meta["exception"] = exc
        finally:
            meta["response_time"] = (time.perf_counter() - start) * 1000
            self.fire(**meta)


class RequestFailure(Exception):
    """A failed request of loadgen's client, as ``exception`` in a ``request`` listener (its text the error's)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def describe(exception: Any) -> str:
    if isinstance(exception, RequestFailure):
        return str(exception)
    if isinstance(exception, BaseException):
        return f"{type(exception).__name__}: {exception}"
    return str(exception)


class Events:
    """Every hook Locust defines, by its Locust name."""

    request: RequestHook

    def __init__(self) -> None:
        for name in EVENT_NAMES:
            setattr(self, name, EventHook(name))
        self.request = RequestHook()

    def reset(self) -> None:
        """No listeners (before a script loads: a worker that stays loads the next test's script afresh)."""
        for name in EVENT_NAMES:
            getattr(self, name)._handlers.clear()
            getattr(self, name)._failures.clear()
        self.request._handlers.clear()
        self.request._failures.clear()

    def __getattr__(self, name: str) -> EventHook:  # for the type checker: hooks are set in __init__
        raise AttributeError(f"events has no hook {name!r} (Locust's hooks: request, {', '.join(EVENT_NAMES)})")


events = Events()
