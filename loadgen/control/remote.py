"""``loadgen master``: the test driven over a fleet of remote workers."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from loadgen.control.controller import Controller, Report
from loadgen.control.launch import execute, prepare
from loadgen.control.locust_controls import ControllerControls
from loadgen.engine.environment import locust_environment
from loadgen.fleet.keyring import insecure_warning
from loadgen.fleet.master import Master
from loadgen.fleet.protocol import REPORT
from loadgen.fleet.security import CurveKeys
from loadgen.model.options import TestOptions
from loadgen.outputs import ConsoleOutput
from loadgen.script.events import events
from loadgen.script.process_hooks import ProcessHooks
from loadgen.stats.aggregate import Aggregate

log = logging.getLogger("loadgen.master")


@dataclass(frozen=True)
class FleetOptions:
    """How the master listens for, waits for and watches its workers."""

    bind: str = "0.0.0.0:5557"
    expect_workers: int = 1  # machines (a --processes N group counts once)
    expect_processes: int | None = None  # or processes, when given
    expect_workers_timeout: float = 60.0
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 3.0
    keys: CurveKeys | None = None


def run_master(options: TestOptions, fleet: FleetOptions, console: ConsoleOutput | None = None,
               local: bool = False) -> int:
    """The whole distributed test; returns the exit code. ``local``: a ``run --processes N``, whose keys live
    as long as the run (not announced) and whose advice is about ``run``."""
    prepared = prepare(options)
    if not local:
        _announce_security(fleet)
    aggregate = Aggregate()
    master = Master(fleet.bind, options, prepared.script, aggregate, fleet.heartbeat_interval,
                    fleet.heartbeat_timeout, fleet.keys)

    def run(controller: Controller) -> Report:
        controller.advisor.remote = not local
        if fleet.expect_processes is not None:
            master.wait_for_workers(fleet.expect_processes, fleet.expect_workers_timeout,
                                    stop=controller.stop_requested, processes=True)
        else:
            master.wait_for_workers(fleet.expect_workers, fleet.expect_workers_timeout,
                                    stop=controller.stop_requested)
        master.start_test(prepared.plan)
        report = controller.run()
        master.quit_workers()  # a worker started with --stay stays connected and waits for the next master
        return report

    controls = ControllerControls("master", aggregate)
    hooks = ProcessHooks(locust_environment(options, prepared.script.user_classes, prepared.script), controls)
    connect_custom(master, hooks)
    return execute(options, prepared, master, aggregate, run, console=console, cleanup=master.close,
                   hooks=(hooks, controls))


def connect_custom(master: Master, hooks: ProcessHooks) -> None:
    """The script's custom messages (``runner.send_message``/``register_message``) and ``worker_report``."""
    runner = hooks.environment.runner
    assert runner is not None
    runner.connect(master.custom.send)

    def received(worker_id: str, name: str, data: Any) -> None:
        if name == REPORT:
            events.worker_report.fire(client_id=worker_id, data=data if isinstance(data, dict) else {})
        elif not runner.deliver(name, data, worker_id):
            log.warning("custom message %r from %s: no handler registered", name, worker_id)

    master.custom.receiver = received


def _announce_security(fleet: FleetOptions) -> None:
    """One line: the key workers must trust, or a loud warning that there is none."""
    if fleet.keys is None:
        print(insecure_warning("master", fleet.bind), file=sys.stderr, flush=True)
        return
    print(f"loadgen master: master key {fleet.keys.fingerprint}; {len(fleet.keys.allowed)} worker keys allowed",
          file=sys.stderr, flush=True)
