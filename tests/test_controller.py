"""The controller in-process: a fake fleet and a clock that jumps, so every behaviour is exact and fast."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gevent.event import Event

from loadgen.control.controller import Controller
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions
from loadgen.model.plan import TestPlan
from loadgen.model.schedules import StageRamp
from loadgen.model.targets import LoadTarget, RateTarget, UsersTarget
from loadgen.script.shapes import LoadShape, ShapeSchedule
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import Recorder, StatsDelta


class JumpingClock:
    """Monotonic time that moves only when the controller waits; callbacks fire at their time."""

    def __init__(self) -> None:
        self.t = 100.0
        self.events: list[tuple[float, Callable[[], None]]] = []

    def now(self) -> float:
        return self.t

    def at(self, elapsed: float, action: Callable[[], None]) -> None:
        self.events.append((100.0 + elapsed, action))
        self.events.sort(key=lambda item: item[0])

    def wait(self, event: Event, timeout: float) -> bool:
        end = self.t + max(0.0, timeout)
        while self.events and self.events[0][0] <= end and not event.is_set():
            when, action = self.events.pop(0)
            self.t = max(self.t, when)
            action()
        if not event.is_set():
            self.t = end
        return event.is_set()


class FakeFleet:
    """Records what the controller asks; each collect() hands over one second of ``per_second`` requests."""

    def __init__(self, per_second: int = 10) -> None:
        self.applied: list[tuple[float, LoadTarget]] = []
        self.clock: JumpingClock | None = None
        self.per_second = per_second
        self.stopped_with: float | None = None
        self.forced = 0
        self.notices: list[Notice] = []
        self.during_stop: Callable[[], None] | None = None

    def apply(self, target: LoadTarget) -> None:
        self.applied.append((self.clock.t - 100.0 if self.clock else 0.0, target))

    def collect(self) -> list[tuple[str, StatsDelta]]:
        recorder = Recorder()
        users = self.applied[-1][1].users if isinstance(self.applied[-1][1], UsersTarget) else 0
        recorder.users = users
        for _ in range(self.per_second):
            recorder.record("GET", "/", 1000, 10)
        return [("w1", recorder.flush())]

    def check(self) -> list[Notice]:
        notices, self.notices = self.notices, []
        return notices

    def stop(self, timeout: float) -> None:
        self.stopped_with = timeout
        if self.during_stop is not None:
            self.during_stop()

    def force_stop(self) -> None:
        self.forced += 1


def make(plan: TestPlan, schedule: object = None, per_second: int = 10) -> tuple[Controller, FakeFleet, JumpingClock]:
    clock = JumpingClock()
    fleet = FakeFleet(per_second)
    fleet.clock = clock
    aggregate = Aggregate(clock=clock.now)
    controller = Controller(plan, fleet, aggregate, schedule=schedule, clock=clock)  # type: ignore[arg-type]
    return controller, fleet, clock


def stages_plan(text: str, **kwargs: object) -> tuple[TestPlan, StageRamp]:
    plan = TestOptions(stages=text, **kwargs).plan()  # type: ignore[arg-type]
    return plan, StageRamp(plan.stages, plan.open_model, plan.spawn_rate)


def test_a_steady_test_runs_its_run_time_and_reports_every_second() -> None:
    controller, fleet, _ = make(TestPlan(users=5, spawn_rate=5, run_time=10))
    snapshots: list[dict] = []
    controller.listeners.append(snapshots.append)
    report = controller.run()
    assert report["stop_reason"] == "run time reached"
    assert [round(s["elapsed"]) for s in snapshots] == list(range(1, 11))
    assert fleet.applied == [(0.0, UsersTarget(5, 5))]
    assert report["totals"]["requests"] == 11 * 10  # ten ticks and the final collect
    assert fleet.stopped_with == 10.0


def test_set_users_during_stages_changes_the_load_and_the_test_goes_on() -> None:
    plan, schedule = stages_plan("5s:10,5s:10", run_time=30.0)
    controller, fleet, clock = make(plan, schedule)
    clock.at(3.0, lambda: controller.set_users(4, 2.0))
    report = controller.run()
    assert report["stop_reason"] == "run time reached", report["stop_reason"]
    assert report["duration_s"] >= 29.9
    later = [target for t, target in fleet.applied if t >= 3.0]
    assert later == [UsersTarget(4, 2.0)]  # the ramp gave way: nothing after the change moved the target


def test_set_users_during_a_load_shape_keeps_the_test_running() -> None:
    class Short(LoadShape):
        def tick(self) -> tuple[int, float] | None:
            return (10, 10.0) if self.get_run_time() < 4 else None

    plan = TestPlan(users=1, spawn_rate=10, run_time=20.0)
    controller, fleet, clock = make(plan, ShapeSchedule(Short(), open_model=False, spawn_rate=10))
    clock.at(2.0, lambda: controller.set_users(3))
    report = controller.run()
    assert report["stop_reason"] == "run time reached"
    assert fleet.applied[-1][1] == UsersTarget(3, 10.0)


def test_set_rate_during_open_model_stages_keeps_the_test_running() -> None:
    plan, schedule = stages_plan("4s:50", arrival_rate=10.0, run_time=12.0)
    controller, fleet, clock = make(plan, schedule)
    clock.at(2.0, lambda: controller.set_rate(7.0))
    snapshots: list[dict] = []
    controller.listeners.append(snapshots.append)
    report = controller.run()
    assert report["stop_reason"] == "run time reached"
    assert fleet.applied[-1][1] == RateTarget(7.0)
    assert snapshots[-1]["model"] == "open" and snapshots[-1]["rate"] == 7.0


def test_stages_end_the_test_when_they_finish() -> None:
    plan, schedule = stages_plan("2s:10,2s:0")
    controller, fleet, _ = make(plan, schedule)
    report = controller.run()
    assert report["stop_reason"] == "load shape finished"
    users = [target.users for _, target in fleet.applied if isinstance(target, UsersTarget)]
    assert max(users) == 10 and users[-1] <= 1
    assert report["users"]["target"] == 10


def test_a_second_signal_forces_the_fleet_without_touching_the_plan() -> None:
    plan = TestPlan(users=1, run_time=60.0, stop_timeout=10.0)
    controller, fleet, clock = make(plan)
    clock.at(2.0, lambda: controller.request_stop("signal SIGINT"))
    fleet.during_stop = controller.force_stop  # the second Ctrl-C arrives while users finish their tasks
    report = controller.run()
    assert fleet.forced == 1 and fleet.stopped_with == 10.0
    assert plan.stop_timeout == 10.0 and report["stop_reason"] == "signal SIGINT"


def test_forcing_before_the_stop_gives_users_no_time() -> None:
    controller, fleet, clock = make(TestPlan(users=1, run_time=60.0, stop_timeout=10.0))
    clock.at(2.0, controller.force_stop)
    report = controller.run()
    assert fleet.forced == 1 and fleet.stopped_with == 0.0 and report["stop_reason"] == "forced"


def test_a_broken_shape_stops_the_test_with_a_warning() -> None:
    def shape(elapsed: float) -> object:
        return "lots" if elapsed > 2 else (5, 5)

    plan = TestPlan(users=1, run_time=30.0)
    controller, _, _ = make(plan, ShapeSchedule(shape, open_model=False, spawn_rate=1))
    report = controller.run()
    assert report["stop_reason"] == "load shape failed"
    assert any(w["kind"] == "script" and "'lots'" in w["message"] for w in report["warnings"])


@pytest.mark.parametrize("result,open_model,expected", [
    ((10, 5), False, UsersTarget(10, 5.0)),
    ((10, 5, ["A"]), False, UsersTarget(10, 5.0, ("A",))),
    (7, False, UsersTarget(7, 2.0)),
    (7, True, RateTarget(7.0)),
    ((7,), True, RateTarget(7.0)),
    (None, True, None),
])
def test_shape_results_become_typed_targets(result: object, open_model: bool, expected: LoadTarget | None) -> None:
    schedule = ShapeSchedule(lambda _t: result, open_model=open_model, spawn_rate=2.0)
    assert schedule.target_at(1.0) == expected


def test_fleet_notices_reach_the_report_once() -> None:
    controller, fleet, clock = make(TestPlan(users=1, run_time=5.0))
    note = Notice("cpu", "worker w1 is hot", "cpu:w1")
    clock.at(1.5, lambda: fleet.notices.extend([note, note]))
    report = controller.run()
    assert [w["message"] for w in report["warnings"] if w["kind"] == "cpu"] == ["worker w1 is hot"]


def test_abort_on_threshold_stops_at_the_first_failing_second() -> None:
    plan = TestOptions(users=1, run_time=60.0, thresholds=("rps<5",), abort_on_threshold=True).plan()
    controller, _, _ = make(plan, per_second=10)
    report = controller.run()
    assert report["stop_reason"] == "threshold failed: rps<5"
    assert report["duration_s"] <= 2.0
    assert controller.exit_code(report) == 4


def test_the_rich_live_view_shows_each_endpoints_rate() -> None:
    import io

    from rich.console import Console

    from loadgen.outputs.console import ConsoleOutput

    controller, _, _ = make(TestPlan(users=1, run_time=3.0), per_second=10)
    snapshots: list[dict] = []
    controller.listeners.append(snapshots.append)
    controller.run()
    assert [e["rps"] for e in snapshots[-1]["endpoints"]] == [10.0]
    view = ConsoleOutput(stream=io.StringIO(), live=True)._renderable(snapshots[-1])
    screen = Console(file=io.StringIO(), width=120, color_system=None)
    screen.print(view)
    row = next(line for line in screen.file.getvalue().splitlines() if line.startswith("GET"))
    assert row.split()[-2] == "10.0", row


def test_once_the_test_has_stopped_the_loop_guard_neither_enforces_nor_escapes() -> None:
    """The guard's deadline ends with the stop, and a forced exit never races the loop's own finish."""
    from types import SimpleNamespace

    from loadgen.control.launch import _escape
    from loadgen.outputs import ConsoleOutput

    controller, _, _ = make(TestPlan(users=2, spawn_rate=2, run_time=3, stop_timeout=1))
    guard = SimpleNamespace(deadline=None, escape=None, stop_grace=None)
    controller.guard = guard  # type: ignore[assignment]
    report = controller.run()
    assert guard.deadline is None and guard.stop_grace is None
    assert controller.finished and report["stop_reason"] == "run time reached"
    # after the finish, a forced exit returns instead of ending this process (this test would not finish)
    _escape(controller, TestOptions(), ConsoleOutput(quiet=True), "forced: test")
    assert controller.finishing.acquire(blocking=False)  # and it left the lock free
    controller.finishing.release()

