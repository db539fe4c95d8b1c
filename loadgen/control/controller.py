"""Drives one test over a fleet (this process, or remote workers): targets over time, a tick every
second, stop on time, signal or threshold, then the report. ``loadgen run`` and ``loadgen master`` share it."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
from gevent import monkey
from gevent.event import Event

from loadgen.control.advice import Advisor
from loadgen.control.cap_warnings import endpoint_cap, error_caps
from loadgen.control.clock import Clock, MonotonicClock
from loadgen.control.recording_watch import RecordingWatch
from loadgen.engine.loop_guard import LoopGuard, install_signals
from loadgen.model.errors import EXIT_EMPTY, EXIT_OK, EXIT_THRESHOLDS
from loadgen.model.notices import Notice
from loadgen.model.plan import TestPlan
from loadgen.model.schedules import Schedule, Steady
from loadgen.model.targets import LoadTarget, RateTarget, UsersTarget
from loadgen.model.thresholds import evaluate
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import StatsDelta
from loadgen.stats.report import Report
from loadgen.stats.snapshot import Snapshot, TickContext

RAMP_STEP = 0.2  # seconds between updates of a ramping target
ESCAPE_GRACE = 1.0  # past the run time and the stop timeout, a blocked loop ends the test this much later



class Fleet(Protocol):
    """Whatever generates the load: the local runner or the master's workers."""

    def apply(self, target: LoadTarget) -> None:
        """Move towards this target (users or rate), from now on."""
        ...

    def collect(self) -> list[tuple[str, StatsDelta]]:
        """Deltas measured since the last call, by worker id (the master merges its own on arrival)."""
        ...

    def check(self) -> list[Notice]:
        """Once a second: what the fleet has to say (health, limits, stuck users)."""
        ...

    def stop(self, timeout: float) -> None:
        """Stop every user, giving busy ones ``timeout`` seconds; returns once the last numbers are in."""
        ...

    def force_stop(self) -> None:
        """End a ``stop()`` in progress now (a second Ctrl-C)."""
        ...


class Controller:
    """One test from start to report. The plan is read, never changed; live changes replace the schedule."""

    def __init__(self, plan: TestPlan, fleet: Fleet, aggregate: Aggregate, schedule: Schedule | None = None,
                 on_snapshot: Callable[[Snapshot], None] | None = None, options: dict[str, Any] | None = None,
                 clock: Clock | None = None) -> None:
        self.plan = plan
        self.options = options or {}
        self.fleet = fleet
        self.aggregate = aggregate
        self.schedule: Schedule = schedule if schedule is not None else Steady(plan.initial_target())
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.stop_requested = Event()
        self.stop_reason = ""
        self.stop_timeout = plan.stop_timeout
        self.target: LoadTarget = plan.initial_target()
        self.listeners: list[Callable[[Snapshot], None]] = [on_snapshot] if on_snapshot is not None else []
        self._signals = 0
        self._applied: LoadTarget | None = None
        self._recording = RecordingWatch(plan.quiet_after)
        self.advisor = Advisor(plan.stop_timeout)  # `remote` set by the master
        self.guard: LoopGuard | None = None
        # the loop's finish or a forced exit's (gevent's monitor thread), not both: a real lock, not gevent's
        self.finishing = monkey.get_original("_thread", "allocate_lock")()
        self.finished = False
        self.running = False
        self.spawned: list[Callable[[int], None]] = []  # called once, when the users first reach the target
        self.started: list[Callable[[], None]] = []  # as the load begins
        self.stopping: list[Callable[[], None]] = []  # the stop begins (users still running)
        self.stopped: list[Callable[[], None]] = []  # the users have stopped (before the report)
        self.stats_reset: list[Callable[[], None]] = []  # --reset-stats has reset the stats
        self._spawn_done = False

    # ---- control -----------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stopped") -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()

    def force_stop(self) -> None:
        """Stop now: busy users are not waited for (a second Ctrl-C)."""
        self.stop_timeout = 0.0
        self.request_stop("forced")
        self.fleet.force_stop()

    def install_signal_handlers(self, guard: LoopGuard | None = None) -> None:
        """First SIGINT/SIGTERM: stop; second: stop now. With a ``guard``, signals are also counted off the
        loop, so that a second one still ends a test whose event loop is blocked (``escape``)."""
        def handle(signum: int) -> None:
            self._signals += 1
            if self._signals == 1:
                self.request_stop(f"signal {signal.Signals(signum).name}")
            else:
                self.force_stop()

        self.guard = guard
        if guard is not None:
            install_signals(handle)
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            gevent.signal_handler(signum, handle, signum)

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        """Hold ``users`` from now on (web API, embedding); a stage plan or shape gives way, the test goes on."""
        self._replace_schedule(UsersTarget(users, spawn_rate or self.plan.spawn_rate))

    def set_rate(self, rate: float) -> None:
        """Hold an arrival rate from now on; a stage plan or shape gives way, the test goes on."""
        self._replace_schedule(RateTarget(rate))

    def _replace_schedule(self, target: LoadTarget) -> None:
        self.schedule = Steady(target)
        self._apply(target)

    # ---- the loop ----------------------------------------------------------------------------------------
    def run(self) -> Report:
        """Run the test; returns the report dict (with thresholds evaluated)."""
        plan = self.plan
        aggregate = self.aggregate
        clock = self.clock
        aggregate.restart_clock()
        self.running = True
        for call in self.started:
            call()
        if self.guard is not None:  # a blocked loop is not waited for past the run time, nor past a stop
            self.guard.stop_grace = plan.stop_timeout + ESCAPE_GRACE
            if plan.run_time is not None:
                self.guard.deadline = time.monotonic() + plan.run_time + plan.stop_timeout + ESCAPE_GRACE
        aggregate.target_users = plan.users if not plan.open_model else plan.max_users
        first = self._scheduled(0.0)
        self._apply(first if first is not None else plan.initial_target())
        next_tick = clock.now() + 1.0
        while not self.stop_requested.is_set():
            now = clock.now()
            wake = min(next_tick, now + RAMP_STEP) if self.schedule.ramps else next_tick
            if clock.wait(self.stop_requested, wake - now):
                break
            elapsed = aggregate.elapsed()
            target = self._scheduled(elapsed)
            if target is None:
                self.request_stop(self.stop_reason or "load shape finished")
                break
            self._apply(target)
            if clock.now() < next_tick:
                continue
            next_tick += 1.0
            self._tick()
            if plan.run_time is not None and elapsed >= plan.run_time - 0.05:
                self.request_stop("run time reached")
                break
            if plan.iterations is not None and aggregate.iterations >= plan.iterations:
                self.request_stop("iterations reached")
                break
            if plan.abort_on_threshold and plan.thresholds:
                failed = [r for r in evaluate(list(plan.thresholds), aggregate.report()) if not r["pass"]]
                if failed:
                    self.request_stop(f"threshold failed: {failed[0]['expression']}")
        for call in self.stopping:
            call()
        self.fleet.stop(self.stop_timeout)
        if self.guard is not None:
            self.guard.deadline = self.guard.stop_grace = None  # stopped: nothing left for the guard to enforce
        for call in self.stopped:
            call()
        return self.finish()

    def finish(self, locked: bool = False) -> Report:
        """The last numbers in, the closing warnings, the report. Also called off the loop by a forced exit
        (``escape``, holding ``finishing``) while the loop is blocked: it touches only the stats, never a
        gevent object; whichever comes first does it."""
        if not locked:
            with self.finishing:
                return self.finish(locked=True)
        self.finished = True
        aggregate = self.aggregate
        self._merge(self.fleet.collect())
        aggregate.finish()
        self._model_warnings()
        self.advisor.warn(aggregate, final=True)
        snapshot = aggregate.tick(self._context())
        empty = self._recording.final(aggregate.iterations, self._recorded(snapshot), self.plan.allow_empty)
        if empty is not None:
            aggregate.notify(empty)
        return self.report()

    def _scheduled(self, elapsed: float) -> LoadTarget | None:
        """The schedule's target; a script's shape that fails ends the test with a warning, not a traceback."""
        try:
            return self.schedule.target_at(elapsed)
        except Exception as exc:  # noqa: BLE001 - a broken shape is the script's error, reported as data
            self.aggregate.warn("script", f"the load shape failed at {elapsed:.1f} s: {type(exc).__name__}: "
                                f"{exc}; the test stopped", key="shape")
            self.stop_reason = "load shape failed"
            return None

    def _merge(self, deltas: list[tuple[str, StatsDelta]]) -> None:
        for worker_id, delta in deltas:
            self.aggregate.add_delta(worker_id, delta)

    def _tick(self) -> None:
        self._merge(self.fleet.collect())
        for notice in self.fleet.check():
            self.aggregate.notify(notice)
        self._model_warnings()
        self._check_spawned()
        snapshot = self.aggregate.tick(self._context())
        quiet = self._recording.observe(snapshot["elapsed"], self.aggregate.iterations, self._recorded(snapshot))
        if quiet is not None:
            self.aggregate.notify(quiet)
        for listener in self.listeners:
            try:
                listener(snapshot)
            except Exception:  # noqa: BLE001 - an output must never stop a test
                pass

    def _check_spawned(self) -> None:
        """The users reached the target for the first time: --reset-stats, and the ``spawned`` listeners."""
        aggregate = self.aggregate
        if self._spawn_done or self.plan.open_model or not aggregate.target_users \
                or aggregate.users < aggregate.target_users:
            return
        self._spawn_done = True
        if self.plan.reset_stats:
            aggregate.reset_stats()
            for call in self.stats_reset:
                call()
        for listener in self.spawned:
            listener(aggregate.users)

    def _recorded(self, snapshot: Snapshot) -> int:
        """What the test has recorded so far: requests, interrupted ones, and the script's exceptions."""
        return int(snapshot["requests"] + snapshot["interrupted"]) + self.aggregate.exceptions

    def _context(self) -> TickContext:
        """What only the controller knows for a snapshot: the model, its current rate, the planned run time."""
        target = self.target
        rate = target.rate if isinstance(target, RateTarget) else None
        return TickContext(model="open" if rate is not None else "closed", rate=rate, run_time=self.plan.run_time)

    def _model_warnings(self) -> None:
        """Say when the load asked for could not be delivered, or a cap was hit (live counts: every tick)."""
        aggregate = self.aggregate
        for notice in [endpoint_cap(aggregate), *error_caps(aggregate)]:
            if notice is not None:
                aggregate.notify(notice)
        self.advisor.warn(aggregate)

    def _apply(self, target: LoadTarget) -> None:
        if target == self._applied:
            return
        if isinstance(target, UsersTarget) and self.schedule.ramps:
            # a linear ramp is applied in small steps: let each step land within its step
            previous = self._applied.users if isinstance(self._applied, UsersTarget) else target.users
            spawn_rate = max(target.spawn_rate, abs(target.users - previous) / RAMP_STEP + 1)
            self.aggregate.target_users = max(self.aggregate.target_users, target.users)
            sent: LoadTarget = UsersTarget(target.users, spawn_rate, target.classes)
        else:
            if isinstance(target, UsersTarget):
                self.aggregate.target_users = target.users
            sent = target
        self._applied = target
        self.target = target
        self.fleet.apply(sent)

    def report(self) -> Report:
        report = self.aggregate.report(options=self.options)
        if self.plan.thresholds:
            report["thresholds"] = evaluate(list(self.plan.thresholds), report)
        report["stop_reason"] = self.stop_reason
        return report

    def exit_code(self, report: Report) -> int:
        if any(not t["pass"] for t in report.get("thresholds", [])):
            return EXIT_THRESHOLDS
        if report["totals"]["failures"] or any(e["method"] == "EXCEPTION" for e in report["errors"]):
            return self.plan.exit_code_on_error
        if self._recording.blind and not self.plan.allow_empty:
            return EXIT_EMPTY
        return EXIT_OK
