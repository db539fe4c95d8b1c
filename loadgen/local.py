"""``loadgen run``: the whole test in this process."""

from __future__ import annotations

import socket
from typing import Any

from loadgen.controller import Controller
from loadgen.environment import Environment
from loadgen.launch import execute, prepare
from loadgen.options import TestOptions
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.recorder import StatsDelta

LOCAL_ID = "local"


class LocalFleet:
    """The fleet of one: this process's runner."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def set_users(self, total: int, spawn_rate: float) -> None:
        self.env.runner.set_users(total, spawn_rate)

    def set_rate(self, rate: float) -> None:
        self.env.set_rate(rate)

    def collect(self) -> list[tuple[str, StatsDelta]]:
        return [(LOCAL_ID, self.env.flush())]

    def check(self, aggregate: Aggregate) -> None:
        for kind, message, key in self.env.check():
            aggregate.warn(kind, message, key=key)

    def stop(self, timeout: float) -> None:
        self.env.stop(timeout)

    def force_stop(self) -> None:
        self.env.runner.force_stop()


def run_local(options: TestOptions, console: Any = None) -> int:
    """Run a test in this process; write reports; return the exit code."""
    plan, script = prepare(options)
    env = Environment(script.user_classes, options, open_model=plan.open_model)
    aggregate = Aggregate()
    aggregate.add_worker(LOCAL_ID, socket.gethostname())
    for kind, message, key in env.preflight(plan):
        aggregate.warn(kind, message, key=key)

    def run(controller: Controller) -> dict:
        report = controller.run()
        for row in report["workers"]:
            row["state"] = "done"
        return report

    return execute(options, plan, LocalFleet(env), aggregate, run, console=console, cleanup=env.close)
