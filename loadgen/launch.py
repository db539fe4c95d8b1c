"""What ``loadgen run`` and ``loadgen master`` share around the controller: plan, outputs, reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadgen.controller import Controller, Fleet, TestPlan
from loadgen.options import TestOptions
from loadgen.outputs import ConsoleOutput, write_reports
from loadgen.outputs.live import attach_outputs
from loadgen.script import Script, load_script
from loadgen.stats.aggregate import Aggregate


def prepare(options: TestOptions) -> tuple[TestPlan, Script]:
    """Validate the options, load the script, and derive the plan (a script's shape unless --stages)."""
    options.validate()
    plan = options.plan()
    script = load_script(options.file or "", options.user_classes)
    plan.shape = script.shape if not options.stages else None
    return plan, script


def execute(options: TestOptions, plan: TestPlan, fleet: Fleet, aggregate: Aggregate,
            run: Callable[[Controller], dict], console: Any = None, cleanup: Callable[[], None] | None = None) -> int:
    """Run the test through ``run(controller)``, then write every report; returns the exit code."""
    console = console or ConsoleOutput(quiet=options.quiet)
    controller = Controller(plan, fleet, aggregate, on_snapshot=console.on_snapshot, options=options.for_report())
    controller.install_signal_handlers()
    outputs = attach_outputs(controller, options)
    try:
        report = run(controller)
    finally:
        if cleanup is not None:
            cleanup()
        outputs.close()
    write_reports(report, json_path=options.json_path, csv_prefix=options.csv_prefix, html_path=options.html_path,
                  junit_path=options.junit_path)
    outputs.on_report(report)
    console.on_report(report)
    return controller.exit_code(report)
