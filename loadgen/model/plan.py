"""What load to apply, for how long, and when the test fails (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadgen.model.errors import EXIT_FAILURES
from loadgen.model.stages import Stage
from loadgen.model.targets import LoadTarget, RateTarget, UsersTarget
from loadgen.model.thresholds import Threshold


@dataclass(frozen=True)
class TestPlan:
    """One test's load model, derived once from the options; nobody changes it while the test runs."""

    __test__ = False  # not a pytest test class

    users: int = 1
    spawn_rate: float = 1.0
    run_time: float | None = None
    arrival_rate: float | None = None
    max_users: int = 1000
    pre_allocate: int = 0
    stages: tuple[Stage, ...] = ()
    stop_timeout: float = 10.0
    thresholds: tuple[Threshold, ...] = field(default_factory=tuple)
    abort_on_threshold: bool = False
    exit_code_on_error: int = EXIT_FAILURES
    allow_empty: bool = False  # a test that recorded nothing exits 0, not EXIT_EMPTY
    quiet_after: float = 30.0  # tasks that record nothing for this long: the test is blind (the stall timeout)
    iterations: int | None = None  # -i: the test ends when this many tasks have run, in all
    reset_stats: bool = False  # --reset-stats: the stats start again once every user is running

    @property
    def open_model(self) -> bool:
        return self.arrival_rate is not None

    def initial_target(self) -> LoadTarget:
        """The target before any stage or shape says otherwise."""
        if self.arrival_rate is not None:
            return RateTarget(self.arrival_rate)
        return UsersTarget(self.users, self.spawn_rate)

    def planned_users(self) -> int:
        """The most users one test may run: the pool of the open model, or the highest closed-model target."""
        if self.open_model:
            return self.max_users
        return max([self.users, *(round(stage.target) for stage in self.stages)])
