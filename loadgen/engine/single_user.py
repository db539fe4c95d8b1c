"""``run_single_user(UserClass)``: one user in this process, each request printed, so that a debugger can
step through it (``python -m loadgen.debug locustfile.py`` runs an unmodified locustfile's own call)."""

from __future__ import annotations

import logging
import sys

import gevent

from loadgen.client.counters import COUNTERS
from loadgen.client.factory import ClientFactory
from loadgen.engine.environment import client_settings
from loadgen.engine.event_recorder import EventRecorder, ObservedSession
from loadgen.engine.user_calls import UserRecord, run_task, start_user, stop_user
from loadgen.model.options import TestOptions
from loadgen.script.events import events
from loadgen.script.locust_compat import SINGLE_USER
from loadgen.script.locust_env import LocustEnvironment
from loadgen.script.options import parsed_options
from loadgen.script.pacing import Pacing, wait_seconds
from loadgen.script.process_hooks import ProcessHooks
from loadgen.script.users import User, UserContext

RUNS: list[str] = []  # the classes run here (python -m loadgen.debug asks whether the script ran one)


class PrintingRecorder(EventRecorder):
    """Records, and prints one line a request: method, name, status or error, time."""

    include_length = False
    include_time = False

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None:
        EventRecorder.record(self, method, name, latency_us, nbytes, error, queued_us, ttfb_us, body_us, setup)
        parts = [f"{method:<8}", f"{name:<40}", "ok" if error is None else error]
        if self.include_time:
            parts.append(f"{latency_us / 1000:.1f} ms")
        if self.include_length:
            parts.append(f"{nbytes} B")
        print(" | ".join(parts), flush=True)


class SingleUserControls:
    kind = "local"

    def user_count(self) -> int:
        return 1

    def target_user_count(self) -> int:
        return 1

    def state(self) -> str:
        return "running"

    def quit(self) -> None:
        raise SystemExit(0)

    stop = quit

    def worker_index(self) -> int:
        return 0

    def worker_count(self) -> int:
        return 1


    def stats_source(self) -> None:
        return None


def run_single_user(user_class: type[User], include_length: bool = False, include_time: bool = False,
                    loglevel: str | None = "WARNING", host: str | None = None, iterations: int | None = None) -> None:
    """Run one user of ``user_class`` until it stops (``StopUser``), ``iterations`` tasks, or Ctrl-C."""
    from gevent import monkey

    RUNS.append(user_class.__name__)
    if not monkey.is_module_patched("socket"):
        monkey.patch_all()
    if loglevel:
        logging.basicConfig(level=getattr(logging, loglevel.upper(), logging.WARNING))
    options = TestOptions(host=host or user_class.host)
    recorder = PrintingRecorder(counters=COUNTERS)
    recorder.include_length, recorder.include_time = include_length, include_time
    events.request.bind(recorder)
    factory = ClientFactory(client_settings(options), recorder, ObservedSession)
    environment = LocustEnvironment(host=options.host, parsed_options=parsed_options(options.to_dict(), {}),
                                    user_classes=[user_class])
    hooks = ProcessHooks(environment, SingleUserControls())
    hooks.init()
    hooks.test_start()
    user = user_class(UserContext(recorder, factory, options.host, environment))
    record = UserRecord(user, user_class.__name__)
    done = 0
    try:
        if start_user(record, recorder):
            while run_task(record, recorder):
                done += 1
                if iterations is not None and done >= iterations:
                    break
                if record.again:
                    record.again = False
                    continue
                owner = record.wait_owner()
                wait = owner.wait_time
                gevent.sleep(wait.interval if isinstance(wait, Pacing) else wait_seconds(wait, owner))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        stop_user(record, recorder, 10.0)
        hooks.quitting()


SINGLE_USER.append(run_single_user)  # what the script layer's run_single_user calls
