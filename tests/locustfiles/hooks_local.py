"""Every process-level event writes `event runner-class pid` to $HOOKS_LOG."""

import os

from locust import HttpUser, constant, events, task
from locust.runners import LocalRunner, MasterRunner, WorkerRunner


def record(event, environment, extra=""):
    runner = environment.runner
    kind = next((cls.__name__ for cls in (MasterRunner, WorkerRunner, LocalRunner) if isinstance(runner, cls)),
                type(runner).__name__)
    with open(os.environ["HOOKS_LOG"], "a") as log:
        log.write(f"{event} {kind} {os.getpid()} {extra}\n".rstrip() + "\n")


@events.init.add_listener
def on_init(environment, **kwargs):
    record("init", environment)


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    record("test_start", environment)


@events.spawning_complete.add_listener
def on_spawned(user_count, **kwargs):
    with open(os.environ["HOOKS_LOG"], "a") as log:
        log.write(f"spawning_complete {user_count} {os.getpid()}\n")


@events.test_stopping.add_listener
def on_test_stopping(environment, **kwargs):
    record("test_stopping", environment)


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):
    record("test_stop", environment)


@events.quitting.add_listener
def on_quitting(environment, **kwargs):
    record("quitting", environment)


class Quiet(HttpUser):
    wait_time = constant(0.05)

    @task
    def home(self):
        self.client.get("/")
