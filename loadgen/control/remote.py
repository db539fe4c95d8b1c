"""``loadgen master``: the test driven over a fleet of remote workers."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from loadgen.control.controller import Controller, Report
from loadgen.control.launch import execute, prepare
from loadgen.fleet.link import DEFAULT_PORT
from loadgen.fleet.master import Master
from loadgen.fleet.security import CurveKeys
from loadgen.model.addresses import is_loopback, parse_host_port
from loadgen.model.options import TestOptions
from loadgen.outputs import ConsoleOutput
from loadgen.stats.aggregate import Aggregate


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


def run_master(options: TestOptions, fleet: FleetOptions, console: ConsoleOutput | None = None) -> int:
    """The whole distributed test; returns the exit code."""
    prepared = prepare(options)
    _warn_if_open(fleet)
    aggregate = Aggregate()
    master = Master(fleet.bind, options, prepared.script, aggregate, fleet.heartbeat_interval,
                    fleet.heartbeat_timeout, fleet.keys)

    def run(controller: Controller) -> Report:
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

    return execute(options, prepared, master, aggregate, run, console=console, cleanup=master.close)


def _warn_if_open(fleet: FleetOptions) -> None:
    try:
        loopback = is_loopback(parse_host_port(fleet.bind, default_port=DEFAULT_PORT).host)
    except ValueError:
        loopback = False  # the master names the bad address when it binds
    if fleet.keys is None and not loopback:
        print(f"loadgen master: warning: listening on {fleet.bind} without encryption or authentication: anyone "
              "who reaches this port can join as a worker and read the script; use --curve-secret-key and "
              "--curve-allow on untrusted networks", file=sys.stderr, flush=True)
    elif fleet.keys is not None and not fleet.keys.allowed:
        print("loadgen master: warning: CURVE encrypts the links but, without --curve-allow, any worker that "
              "knows the master's public key may join", file=sys.stderr, flush=True)
