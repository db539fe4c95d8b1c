"""Locust's ``environment`` as a locustfile sees it: ``host``, ``parsed_options``, ``events``, ``runner``
(``user_count``, ``state``, ``quit()``, ``worker_index``...) and ``stats.total`` (``num_requests``,
``fail_ratio``, ``get_response_time_percentile``...), read from loadgen's own records.

The control layer (local run, master) and the worker build one per process with a ``RunnerControls`` of
their own; the view only reads through it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import gevent
from gevent.queue import Queue

from loadgen.script.events import Events, events

LOG = logging.getLogger("loadgen.messages")
Handler = Callable[..., Any]
MAX_QUEUED = 1000


class StatsSource(Protocol):
    """What the stats view reads: an ``Aggregate`` (local run, master) or a worker's own tally."""

    @property
    def entries(self) -> dict[tuple[str, str], Any]: ...

    def total_histogram(self, service: bool = False) -> Any: ...
    def elapsed(self) -> float: ...


class RunnerControls(Protocol):
    """What a process offers the runner view: its counts, its state, stopping, custom messages."""

    kind: str  # "local", "master" or "worker"

    def user_count(self) -> int: ...
    def target_user_count(self) -> int: ...
    def state(self) -> str: ...
    def quit(self) -> None: ...
    def stop(self) -> None: ...
    def worker_index(self) -> int: ...
    def worker_count(self) -> int: ...
    def stats_source(self) -> StatsSource | None: ...


class StatsEntryView:
    """One row of Locust's stats (``stats.total`` or ``stats.entries[(name, method)]``), in milliseconds."""

    def __init__(self, rows: Callable[[], list[Any]], histogram: Callable[[], Any],
                 elapsed: Callable[[], float], name: str = "Aggregated", method: str = "") -> None:
        self._rows = rows
        self._histogram = histogram
        self._elapsed = elapsed
        self.name = name
        self.method = method

    @property
    def num_requests(self) -> int:
        return sum(row.requests for row in self._rows())

    @property
    def num_failures(self) -> int:
        return sum(row.failures for row in self._rows())

    @property
    def fail_ratio(self) -> float:
        requests = self.num_requests
        return self.num_failures / requests if requests else 0.0

    @property
    def total_content_length(self) -> int:
        return sum(row.bytes for row in self._rows())

    @property
    def avg_response_time(self) -> float:
        histogram = self._histogram()
        return histogram.mean / 1000 if len(histogram) else 0.0

    @property
    def median_response_time(self) -> float:
        return self.get_response_time_percentile(0.5)

    @property
    def min_response_time(self) -> float:
        return self.get_response_time_percentile(0.0)

    @property
    def max_response_time(self) -> float:
        return self.get_response_time_percentile(1.0)

    def get_response_time_percentile(self, percent: float) -> float:
        histogram = self._histogram()
        return histogram.percentile(percent) / 1000 if len(histogram) else 0.0

    @property
    def total_rps(self) -> float:
        elapsed = self._elapsed()
        return self.num_requests / elapsed if elapsed > 0 else 0.0

    current_rps = total_rps

    @property
    def total_fail_per_sec(self) -> float:
        elapsed = self._elapsed()
        return self.num_failures / elapsed if elapsed > 0 else 0.0


class StatsView:
    """``environment.stats``: ``total``, ``entries`` and ``get(name, method)``."""

    def __init__(self, source: Callable[[], StatsSource | None]) -> None:
        self._source = source
        self.total = StatsEntryView(self._all_rows, self._total_histogram, self._elapsed)

    def _all_rows(self) -> list[Any]:
        """Every row counted: the merged ones, and (locally) those recorded since the last merge."""
        source = self._source()
        if source is None:
            return []
        pending = getattr(source, "pending", None)
        return [*source.entries.values(), *(pending() if pending is not None else ())]

    def _total_histogram(self) -> Any:
        source = self._source()
        if source is None:
            from loadgen.stats.spans import SpanHistogram

            return SpanHistogram()
        return source.total_histogram()

    def _elapsed(self) -> float:
        source = self._source()
        return source.elapsed() if source is not None else 0.0

    def get(self, name: str, method: str) -> StatsEntryView:
        def rows() -> list[Any]:
            source = self._source()
            entry = source.entries.get((method, name)) if source is not None else None
            return [entry] if entry is not None else []

        def histogram() -> Any:
            found = rows()
            if found:
                return found[0].latency
            return self._total_histogram().__class__()

        return StatsEntryView(rows, histogram, self._elapsed, name, method)

    @property
    def entries(self) -> dict[tuple[str, str], StatsEntryView]:
        source = self._source()
        keys = list(source.entries) if source is not None else []
        return {(name, method): self.get(name, method) for method, name in keys}

    @property
    def num_requests(self) -> int:
        return self.total.num_requests

    def __iter__(self) -> Iterator[StatsEntryView]:
        return iter(self.entries.values())


class RunnerView:
    """``environment.runner``."""

    def __init__(self, controls: RunnerControls, environment: LocustEnvironment) -> None:
        self._controls = controls
        self.environment = environment
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._inbox: Queue[tuple[Handler, Message]] | None = None
        self._sender: Callable[[str, Any, str | None], None] | None = None
        self._queued: list[tuple[str, Any, str | None]] = []  # sent before the link was connected (in init)

    def connect(self, sender: Callable[[str, Any, str | None], None]) -> None:
        """How this process's custom messages leave it (a worker's to its master, a master's to workers);
        those sent before (an ``init`` listener's) go now."""
        self._sender = sender
        queued, self._queued = self._queued, []
        for name, data, client_id in queued:
            sender(name, data, client_id)

    @property
    def stats(self) -> StatsView:
        return self.environment.stats

    @property
    def user_count(self) -> int:
        return self._controls.user_count()

    @property
    def target_user_count(self) -> int:
        return self._controls.target_user_count()

    @property
    def state(self) -> str:
        return self._controls.state()

    @property
    def worker_index(self) -> int:
        return self._controls.worker_index()

    @property
    def worker_count(self) -> int:
        return self._controls.worker_count()

    def quit(self) -> None:
        """End the test (everywhere, from the master or a local run; a worker asks its master)."""
        self._controls.quit()

    def stop(self) -> None:
        self._controls.stop()

    def register_message(self, name: str, handler: Handler, concurrent: bool = False) -> None:
        """``handler(environment=..., msg=...)`` for each custom message ``name`` this process receives: in
        order, in a greenlet of their own (``concurrent``: each in its own), never in the link's loop."""
        self._handlers[name] = (handler, concurrent)

    def send_message(self, name: str, data: Any = None, client_id: str | None = None) -> None:
        """To the master (from a worker), to every worker or one (``client_id``) from the master; a local run
        delivers to its own handler, as Locust's local runner does."""
        if self._controls.kind == "local":
            self.deliver(name, data)
            return
        if self._sender is None:  # not connected yet (an init listener): sent when the test starts
            if len(self._queued) < MAX_QUEUED:
                self._queued.append((name, data, client_id))
            return
        self._sender(name, data, client_id)

    def deliver(self, name: str, data: Any, node_id: str | None = None) -> bool:
        """A custom message arrived: its handler runs (inline in a local run, else off the link's loop, so
        a slow handler cannot stall heartbeats); False when none is registered."""
        entry = self._handlers.get(name)
        if entry is None:
            return False
        handler, concurrent = entry
        message = Message(name, data, node_id)
        if self._controls.kind == "local":
            self._call(handler, message)
        elif concurrent:
            gevent.spawn(self._call, handler, message)
        else:
            if self._inbox is None:
                self._inbox = Queue()
                gevent.spawn(self._drain, self._inbox)
            self._inbox.put((handler, message))
        return True

    def _drain(self, inbox: Queue[tuple[Handler, Message]]) -> None:
        while True:
            handler, message = inbox.get()
            self._call(handler, message)

    def _call(self, handler: Handler, message: Message) -> None:
        try:
            handler(environment=self.environment, msg=message)
        except Exception:  # noqa: BLE001 - the script's handler failing is the script's, logged
            LOG.exception("the handler of custom message %r failed", message.type)


class LocalRunner(RunnerView):
    """``environment.runner`` of a ``loadgen run``."""


class MasterRunner(RunnerView):
    """``environment.runner`` on the master."""


class WorkerRunner(RunnerView):
    """``environment.runner`` on a worker."""


RUNNER_KINDS: dict[str, type[RunnerView]] = {"local": LocalRunner, "master": MasterRunner, "worker": WorkerRunner}


class Message:
    """A custom message as a handler gets it (``msg.data``, ``msg.node_id``)."""

    def __init__(self, type_: str, data: Any, node_id: str | None) -> None:
        self.type = type_
        self.data = data
        self.node_id = node_id


class LocustEnvironment:
    """``environment`` (and ``self.environment`` on users and task sets)."""

    def __init__(self, host: str | None = None, parsed_options: argparse.Namespace | None = None,
                 user_classes: list[type] | None = None, shape: Any = None, locustfile: str = "",
                 event_hooks: Events = events) -> None:
        self.host = host
        self.parsed_options = parsed_options if parsed_options is not None else argparse.Namespace()
        self.user_classes = user_classes or []
        self.shape_class = shape
        self.locustfile = locustfile
        self.events = event_hooks
        self._controls: RunnerControls | None = None
        self.stats = StatsView(self._stats_source)
        self.runner: RunnerView | None = None
        self.web_ui = None
        self.catch_exceptions = True
        self.process_exit_code: int | None = None
        self.reset_stats = False
        self.stop_timeout: float | None = None

    def attach(self, controls: RunnerControls) -> RunnerView:
        """Give this environment its runner (once its process knows how it runs)."""
        self._controls = controls
        self.runner = RUNNER_KINDS.get(controls.kind, RunnerView)(controls, self)
        return self.runner

    def _stats_source(self) -> StatsSource | None:
        return self._controls.stats_source() if self._controls is not None else None

    def create_local_runner(self) -> Any:
        raise NotImplementedError("loadgen runs the test itself: use `loadgen run -f locustfile.py` "
                                  "(or run_single_user to debug one user)")

    create_master_runner = create_worker_runner = create_local_runner
