"""What ``loadgen run`` and ``loadgen master`` share around the controller: plan, outputs, reports."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from loadgen.control.controller import Controller, Fleet, Report
from loadgen.control.locust_controls import ControllerControls
from loadgen.model.errors import EXIT_FAILURES
from loadgen.model.options import TestOptions
from loadgen.model.plan import TestPlan
from loadgen.model.schedules import Schedule, StageRamp, Steady
from loadgen.outputs import ConsoleOutput, write_reports
from loadgen.outputs.live import attach_outputs
from loadgen.script.loader import Script, load_script
from loadgen.script.locust_modules import LOCUST_NOTE
from loadgen.script.process_hooks import ProcessHooks
from loadgen.script.shapes import ShapeSchedule
from loadgen.stats.aggregate import Aggregate


@dataclass(frozen=True)
class Prepared:
    """A validated test: its plan, the loaded script and the schedule of targets."""

    plan: TestPlan
    script: Script
    schedule: Schedule


def prepare(options: TestOptions) -> Prepared:
    """Validate the options, load the script, and choose the schedule (--stages, else the script's shape)."""
    options.validate()
    plan = options.plan()
    script = load_script(options.file or "", options.user_classes, tags=options.tags,
                         exclude_tags=options.exclude_tags, script_args=options.script_args)
    if options.script_args:  # workers get the classes named and the script's option values, parsed here
        options.user_classes = tuple(script.user_classes)
        options.script_args = ()
    options.extra["script_options"] = script.script_options
    if script.locust:
        print(LOCUST_NOTE, file=sys.stderr, flush=True)
    schedule: Schedule
    if plan.stages:
        schedule = StageRamp(plan.stages, plan.open_model, plan.spawn_rate)
    elif script.shape is not None:
        schedule = ShapeSchedule(script.shape, plan.open_model, plan.spawn_rate, tuple(script.user_classes))
    else:
        schedule = Steady(plan.initial_target())
    return Prepared(plan, script, schedule)


def _escape(controller: Controller, options: TestOptions, console: ConsoleOutput, reason: str) -> None:
    """Off the loop (gevent's monitor thread), the loop blocked: write every report from what was recorded,
    then end the process with the test's exit status."""
    if not controller.finishing.acquire(blocking=False):
        return  # the loop is finishing: it writes the reports and exits as usual
    if controller.finished:
        controller.finishing.release()
        return
    # the lock is kept until the process ends: a loop that comes back must not write the reports as well
    code = EXIT_FAILURES
    try:
        controller.stop_reason = reason
        controller.aggregate.warn("blocking", f"{reason}: a call that never yields held every user; the "
                                  "reports hold what was recorded until then", key="escape")
        report = controller.finish(locked=True)
        for row in report["workers"]:
            if row.get("state") == "running":
                row["state"] = "forced"
        write_reports(report, json_path=options.json_path, csv_prefix=options.csv_prefix,
                      html_path=options.html_path, junit_path=options.junit_path)
        console.on_report(report)
        code = controller.exit_code(report) or EXIT_FAILURES  # the test did not end as planned
        print(f"loadgen: {reason}; the reports hold what was recorded until then", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback, and the process still ends
        print(f"loadgen: error: {reason}, and the reports could not be written: {type(exc).__name__}: {exc}",
              file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def execute(options: TestOptions, prepared: Prepared, fleet: Fleet, aggregate: Aggregate,
            run: Callable[[Controller], Report], console: ConsoleOutput | None = None,
            cleanup: Callable[[], None] | None = None, hooks: Hooks | None = None) -> int:
    """Run the test through ``run(controller)``, then write every report; returns the exit code.
    ``hooks``: the script's Locust event hooks in this process, and the controls of its ``runner``."""
    console = console or ConsoleOutput(quiet=options.quiet)
    controller = Controller(prepared.plan, fleet, aggregate, schedule=prepared.schedule,
                            on_snapshot=console.on_snapshot, options=options.for_report())
    if hooks is not None:
        attach_hooks(controller, *hooks)
    guard = getattr(fleet, "guard", None)
    controller.install_signal_handlers(guard)
    outputs = attach_outputs(controller, options)
    if guard is not None:
        guard.escape = lambda reason: _escape(controller, options, console, reason)
    try:
        report = run(controller)
    finally:
        if guard is not None:
            guard.deadline = guard.escape = guard.stop_grace = None  # over: what follows is loadgen's own work
        if cleanup is not None:
            cleanup()
        outputs.close()
    write_reports(report, json_path=options.json_path, csv_prefix=options.csv_prefix, html_path=options.html_path,
                  junit_path=options.junit_path)
    outputs.on_report(report)
    console.on_report(report)
    code = controller.exit_code(report)
    if hooks is not None:
        process_hooks, controls = hooks
        controls.done = True
        process_hooks.quitting()
        chosen = process_hooks.environment.process_exit_code  # set by a quitting/test_stop listener
        if isinstance(chosen, int) and not isinstance(chosen, bool):
            code = chosen
        process_hooks.quit(code)
    return code


Hooks = tuple[ProcessHooks, ControllerControls]


def attach_hooks(controller: Controller, hooks: ProcessHooks, controls: ControllerControls) -> None:
    """The script's hooks at the controller's moments (init now)."""
    controls.bind(controller)
    hooks.init()
    controller.started.append(hooks.test_start)
    controller.spawned.append(hooks.spawning_complete)
    controller.stopping.append(hooks.test_stopping)
    controller.stopped.append(hooks.test_stop)
    controller.stats_reset.append(hooks.reset_stats)
    shape = hooks.environment.shape_class
    if shape is not None and hasattr(shape, "runner"):
        shape.runner = hooks.environment.runner
