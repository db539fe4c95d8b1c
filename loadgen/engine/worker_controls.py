"""``environment.runner`` on a worker (and in a machine's child processes): its own users, its slot."""

from __future__ import annotations

import gevent

from loadgen.engine.runner import Runner


class WorkerControls:
    """``environment.runner`` on a worker: its own users, its slot in the fleet."""

    kind = "worker"

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def user_count(self) -> int:
        return self._runner.user_count

    def target_user_count(self) -> int:
        return sum(self._runner.target.values())

    def state(self) -> str:
        runner = self._runner
        if runner.stopped:
            return "stopped"
        if runner.user_count < sum(runner.target.values()):
            return "spawning"
        return "running" if runner.user_count else "ready"

    def quit(self) -> None:
        """A worker's own users stop (the master goes on with the others)."""
        gevent.spawn(self._runner.stop)

    stop = quit

    def worker_index(self) -> int:
        return self._runner.placement.slot

    def worker_count(self) -> int:
        return self._runner.placement.slots


    def stats_source(self) -> None:
        """A worker's own stats are not kept apart from what it ships (the master's are the test's)."""
        return None
