"""``environment.runner`` where the controller runs the test (``loadgen run``, the master): the fleet's user
counts, the test's state, and ``quit()``/``stop()`` as a stop request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadgen.control.controller import Controller
from loadgen.stats.aggregate import Aggregate


class LiveStats:
    """The aggregate, and the local rows recorded since its last merge."""

    def __init__(self, aggregate: Aggregate, pending: Callable[[], list[Any]]) -> None:
        self._aggregate = aggregate
        self.pending = pending

    @property
    def entries(self) -> dict[tuple[str, str], Any]:
        return self._aggregate.entries

    def total_histogram(self, service: bool = False) -> Any:
        return self._aggregate.total_histogram(service)

    def elapsed(self) -> float:
        return self._aggregate.elapsed()


class ControllerControls:
    """Reads the aggregate; ``quit()`` asks the controller to stop (bound once the controller exists)."""

    def __init__(self, kind: str, aggregate: Aggregate) -> None:
        self.kind = kind
        self._aggregate = aggregate
        self._user_count: Callable[[], int] | None = None  # local: the runner's own count (no second of lag)
        self._controller: Controller | None = None
        self._pending: Callable[[], list[Any]] | None = None
        self.done = False

    def count_users(self, count: Callable[[], int]) -> None:
        self._user_count = count

    def bind(self, controller: Controller) -> None:
        self._controller = controller

    def user_count(self) -> int:
        return int(self._user_count()) if self._user_count is not None else self._aggregate.users

    def target_user_count(self) -> int:
        return self._aggregate.target_users

    def state(self) -> str:
        controller = self._controller
        if self.done:
            return "stopped"
        if controller is None or not controller.running:
            return "ready"
        if controller.stop_requested.is_set():
            return "stopping"
        return "running" if self.user_count() >= self.target_user_count() else "spawning"

    def quit(self) -> None:
        if self._controller is not None:
            self._controller.request_stop("runner.quit() in the script")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.request_stop("runner.stop() in the script")

    def worker_index(self) -> int:
        return 0

    def worker_count(self) -> int:
        if self.kind == "local":
            return 1
        return sum(1 for row in self._aggregate.workers.values() if row.state != "lost")


    def stats_source(self) -> Any:
        return self._aggregate if self._pending is None else LiveStats(self._aggregate, self._pending)

    def count_requests(self, pending: Callable[[], list[Any]]) -> None:
        """Local: the rows recorded since the last merge count too (``stats.total`` without a second's lag)."""
        self._pending = pending
