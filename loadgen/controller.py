"""Drives one test over a fleet (this process, or remote workers): targets over time, a tick every
second, stop on time or signal, then the report. ``loadgen run`` and ``loadgen master`` share it."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent
from gevent.event import Event

from loadgen.errors import EXIT_FAILURES, EXIT_OK, EXIT_THRESHOLDS
from loadgen.shape import Stage, shape_target, stage_target
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import StatsDelta
from loadgen.thresholds import Threshold, evaluate

RAMP_STEP = 0.2  # seconds between updates of a ramping target


@dataclass
class TestPlan:
    """What load to apply, for how long."""

    users: int = 1
    spawn_rate: float = 1.0
    run_time: float | None = None
    arrival_rate: float | None = None
    max_users: int = 1000
    pre_allocate: int = 0
    stages: list[Stage] | None = None
    shape: Any = None
    stop_timeout: float = 10.0
    thresholds: list[Threshold] = field(default_factory=list)
    abort_on_threshold: bool = False
    exit_code_on_error: int = EXIT_FAILURES

    @property
    def open_model(self) -> bool:
        return self.arrival_rate is not None


class Fleet(Protocol):
    """Whatever generates the load: the local runner or the master's workers."""

    def set_users(self, total: int, spawn_rate: float) -> None: ...
    def set_rate(self, rate: float) -> None: ...
    def collect(self) -> list[tuple[str, StatsDelta]]: ...
    def check(self, aggregate: Aggregate) -> None: ...
    def stop(self, timeout: float) -> None: ...


class Controller:
    """One test from start to report."""

    def __init__(self, plan: TestPlan, fleet: Fleet, aggregate: Aggregate,
                 on_snapshot: Callable[[dict], None] | None = None, options: dict | None = None) -> None:
        self.plan = plan
        self.options = options or {}
        self.fleet = fleet
        self.aggregate = aggregate
        self.on_snapshot = on_snapshot
        self.stop_requested = Event()
        self.stop_reason = ""
        self._signals = 0
        self._last_target: tuple | None = None
        self._last_users: int | None = None
        self.listeners: list[Callable[[dict], None]] = []

    # ---- control -----------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stopped") -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int) -> None:
            self._signals += 1
            if self._signals == 1:
                self.request_stop(f"signal {signal.Signals(signum).name}")
            else:
                self.plan.stop_timeout = 0.0
                self.request_stop("forced")
                force_stop = getattr(self.fleet, "force_stop", None)  # ends a graceful stop in progress
                if force_stop is not None:
                    force_stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            gevent.signal_handler(signum, handle, signum)

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        """Change the closed-model target while running (web API, embedding)."""
        self.plan.users = users
        self.plan.stages = None
        self.plan.shape = None
        self._apply((users, spawn_rate or self.plan.spawn_rate))

    def set_rate(self, rate: float) -> None:
        self.plan.arrival_rate = rate
        self.plan.stages = None
        self.plan.shape = None
        self._apply((rate,))

    # ---- the loop ----------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run the test; returns the report dict (with thresholds evaluated)."""
        plan = self.plan
        aggregate = self.aggregate
        aggregate.restart_clock()
        aggregate.target_users = plan.users if not plan.open_model else plan.max_users
        self._apply(self._target_at(0.0) or self._initial_target())
        next_tick = time.monotonic() + 1.0
        shaped = bool(plan.stages) or plan.shape is not None
        while not self.stop_requested.is_set():
            wake = min(next_tick, time.monotonic() + RAMP_STEP) if shaped else next_tick
            if self.stop_requested.wait(max(0.0, wake - time.monotonic())):
                break
            elapsed = aggregate.elapsed()
            if shaped:
                target = self._target_at(elapsed)
                if target is None:
                    self.request_stop("load shape finished")
                    break
                self._apply(target)
            if time.monotonic() < next_tick:
                continue
            next_tick += 1.0
            self._tick()
            if plan.run_time is not None and elapsed >= plan.run_time - 0.05:
                self.request_stop("run time reached")
                break
            if plan.abort_on_threshold and plan.thresholds:
                results = evaluate(plan.thresholds, aggregate.report())
                failed = [r for r in results if not r["pass"]]
                if failed:
                    self.request_stop(f"threshold failed: {failed[0]['expression']}")
        self.fleet.stop(plan.stop_timeout)
        for worker_id, delta in self.fleet.collect():
            aggregate.add_delta(worker_id, delta)
        aggregate.finish()
        self._model_warnings()
        self._connection_warnings()
        aggregate.tick()
        return self.report()

    def _tick(self) -> None:
        for worker_id, delta in self.fleet.collect():
            self.aggregate.add_delta(worker_id, delta)
        self.fleet.check(self.aggregate)
        self._model_warnings()
        snapshot = self.aggregate.tick()
        if self.plan.run_time:
            snapshot["run_time"] = self.plan.run_time
        for listener in [self.on_snapshot, *self.listeners]:
            if listener is not None:
                try:
                    listener(snapshot)
                except Exception:  # noqa: BLE001 - an output must never stop a test
                    pass

    def _model_warnings(self) -> None:
        """Say when the load asked for could not be delivered."""
        aggregate = self.aggregate
        if aggregate.missed:
            aggregate.warn("pacing", "tasks took longer than their pacing interval: "
                           f"{aggregate.missed} scheduled starts were missed so far (timeline 'missed'); "
                           "add users or lengthen the interval", key="pacing")
        if aggregate.dropped:
            aggregate.warn("dropped", f"{aggregate.dropped} iterations could not start within 1 s of their "
                           "intended time because every user was busy (timeline 'dropped'); raise --max-users",
                           key="dropped")

    def _connection_warnings(self) -> None:
        counters = self.aggregate.counters
        requests = counters.get("requests", 0)
        # every user's first connection is unavoidable; reconnects are the cost worth a warning
        reconnects = counters.get("opened", 0) - max(self.aggregate.peak_users, self.aggregate.users)
        if requests >= 20 and reconnects > requests / 2:
            self.aggregate.warn(
                "connections",
                f"{counters['opened']} connections were opened for {requests} requests: each one costs a TCP "
                "connect (and a TLS handshake over HTTPS); keep connections alive unless that is the point",
                key="connections")

    def _initial_target(self) -> tuple:
        plan = self.plan
        if plan.open_model:
            return (plan.arrival_rate,)
        return (plan.users, plan.spawn_rate)

    def _target_at(self, elapsed: float) -> tuple | None:
        plan = self.plan
        if plan.shape is not None:
            return shape_target(plan.shape, elapsed)
        if plan.stages:
            value = stage_target(plan.stages, elapsed)
            if value is None:
                return None
            if plan.open_model:
                return (value,)
            return (round(value), plan.spawn_rate if plan.spawn_rate > 0 else 1e9)
        return None

    def _apply(self, target: tuple) -> None:
        if target == self._last_target:
            return
        self._last_target = target
        if len(target) == 1:
            self.fleet.set_rate(float(target[0]))
            return
        users, spawn_rate = int(target[0]), float(target[1])
        if self.plan.stages:
            # a linear ramp is applied in small steps: let each step land within its step
            previous = self._last_users if self._last_users is not None else users
            spawn_rate = max(spawn_rate, abs(users - previous) / RAMP_STEP + 1)
        self._last_users = users
        self.aggregate.target_users = max(self.aggregate.target_users, users) if self.plan.stages else users
        self.fleet.set_users(users, spawn_rate)

    def report(self) -> dict:
        report = self.aggregate.report(options=self.options)
        if self.plan.thresholds:
            report["thresholds"] = evaluate(self.plan.thresholds, report)
        report["stop_reason"] = self.stop_reason
        return report

    def exit_code(self, report: dict) -> int:
        if any(not t["pass"] for t in report.get("thresholds", [])):
            return EXIT_THRESHOLDS
        if report["totals"]["failures"] or any(e["method"] == "EXCEPTION" for e in report["errors"]):
            return self.plan.exit_code_on_error
        return EXIT_OK
