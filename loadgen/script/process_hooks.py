"""Locust's event hooks of one process, each fired once at its moment with Locust's keyword arguments.

Where and when (docs/from-locust.md): ``init`` when the process has built its test (every process),
``test_start`` as the load begins, ``spawning_complete`` when the users first reach the target, and
``test_stopping``, ``test_stop``, ``quitting`` at the end: all in every process. A ``loadgen run`` is one
process, so each fires once.
"""

from __future__ import annotations

from typing import Any

from loadgen.script.events import events
from loadgen.script.locust_env import LocustEnvironment, RunnerControls


class ProcessHooks:
    """Fires the hooks of one process, each at most once (``reset`` for a worker's next test)."""

    def __init__(self, environment: LocustEnvironment, controls: RunnerControls) -> None:
        self.environment = environment
        environment.attach(controls)
        self._fired: set[str] = set()

    def _once(self, name: str, **kwargs: Any) -> bool:
        if name in self._fired:
            return False
        self._fired.add(name)
        getattr(events, name).fire(**kwargs)
        return True

    def init(self) -> None:
        self._once("init", environment=self.environment, runner=self.environment.runner, web_ui=None)

    def test_start(self) -> None:
        self._once("test_start", environment=self.environment)

    def spawning_complete(self, user_count: int) -> None:
        self._once("spawning_complete", user_count=user_count)

    def test_stopping(self) -> None:
        self._once("test_stopping", environment=self.environment)

    def test_stop(self) -> None:
        self.test_stopping()
        self._once("test_stop", environment=self.environment)

    def quitting(self) -> None:
        self.test_stop()
        self._once("quitting", environment=self.environment)

    def quit(self, exit_code: int) -> None:
        self._once("quit", exit_code=exit_code)

    def reset_stats(self) -> None:
        events.reset_stats.fire()

    @property
    def started(self) -> bool:
        return "test_start" in self._fired

    @property
    def spawned(self) -> bool:
        return "spawning_complete" in self._fired
