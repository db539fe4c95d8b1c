"""``environment.runner`` on a worker (and in a machine's child processes): its own users, its slot."""

from __future__ import annotations

import time

import gevent

from loadgen.engine.runner import Runner
from loadgen.stats.endpoint import Entry
from loadgen.stats.histogram import Histogram
from loadgen.stats.recorder import Recorder, StatsDelta


class WorkerStats:
    """A worker's own numbers for ``environment.stats``: every delta it flushed, and what it recorded since."""

    def __init__(self, recorder: Recorder) -> None:
        self.tally = StatsDelta()
        self._recorder = recorder
        self._started = time.monotonic()

    @property
    def entries(self) -> dict[tuple[str, str], Entry]:
        return self.tally.entries

    def pending(self) -> list[Entry]:
        return self._recorder.pending()

    def total_histogram(self, service: bool = False) -> Histogram:
        total = Histogram()
        for entry in list(self.tally.entries.values()):
            total.merge(entry.latency)
        return total

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def add(self, delta: StatsDelta) -> None:
        self.tally.absorb(delta)


class WorkerControls:
    """``environment.runner`` on a worker: its own users, its slot in the fleet."""

    kind = "worker"

    def __init__(self, runner: Runner, stats: WorkerStats | None = None) -> None:
        self._runner = runner
        self._stats = stats

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


    def stats_source(self) -> WorkerStats | None:
        """This worker's own numbers (kept for a script that uses Locust's names; the master's are the test's)."""
        return self._stats
