"""``loadgen run``: the whole test in this process."""

from __future__ import annotations

import socket

from loadgen.control.controller import Controller, Report
from loadgen.control.launch import execute, prepare
from loadgen.control.locust_controls import ControllerControls
from loadgen.engine.environment import Environment
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions
from loadgen.model.targets import LoadTarget, RateTarget
from loadgen.outputs import ConsoleOutput
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import StatsDelta

LOCAL_ID = "local"


class LocalFleet:
    """The fleet of one: this process's runner."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.guard = env.guard  # the blocked-loop guard (None with --max-blocking 0)

    def apply(self, target: LoadTarget) -> None:
        if isinstance(target, RateTarget):
            self.env.set_rate(target.rate)
        else:
            self.env.runner.set_users(target.users, target.spawn_rate, target.classes)

    def collect(self) -> list[tuple[str, StatsDelta]]:
        return [(LOCAL_ID, self.env.flush())]

    def check(self) -> list[Notice]:
        return self.env.check()

    def stop(self, timeout: float) -> None:
        self.env.stop(timeout)

    def force_stop(self) -> None:
        self.env.runner.force_stop()


def run_local(options: TestOptions, console: ConsoleOutput | None = None) -> int:
    """Run a test in this process; write reports; return the exit code."""
    prepared = prepare(options)
    plan = prepared.plan
    aggregate = Aggregate()
    controls = ControllerControls("local", aggregate)
    env = Environment(prepared.script.user_classes, options, open_model=plan.open_model, script=prepared.script,
                      controls=controls)
    controls.count_users(lambda: env.runner.user_count)
    controls.count_requests(env.recorder.pending)
    aggregate.add_worker(LOCAL_ID, socket.gethostname())
    for notice in env.preflight(plan):
        aggregate.notify(notice)

    def run(controller: Controller) -> Report:
        report = controller.run()
        for row in report["workers"]:
            row["state"] = "done"
        return report

    return execute(options, prepared, LocalFleet(env), aggregate, run, console=console, cleanup=env.close,
                   hooks=(env.hooks, controls))
