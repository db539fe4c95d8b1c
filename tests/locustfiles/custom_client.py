"""A User with its own client that fires events.request: every fired request is recorded; each one is also
written to the file in $HOOKS_LOG, so the report can be checked against what fired."""

import os
import time

from locust import User, constant, events, task


class FakeDbClient:
    def __init__(self, environment):
        self.environment = environment
        self.calls = 0

    def query(self, name):
        self.calls += 1
        start = time.perf_counter()
        time.sleep(0.002)
        failed = self.calls % 4 == 0
        self.environment.events.request.fire(
            request_type="SQL", name=name, response_time=(time.perf_counter() - start) * 1000,
            response_length=10, exception=RuntimeError("deadlock") if failed else None, context={})
        with open(os.environ["HOOKS_LOG"], "a") as log:
            log.write(f"fired {name} {'fail' if failed else 'ok'}\n")


class DbUser(User):
    wait_time = constant(0.02)

    def on_start(self):
        self.db = FakeDbClient(self.environment)

    @task(2)
    def select(self):
        self.db.query("select")

    @task
    def update(self):
        self.db.query("update")


@events.quitting.add_listener
def _(environment, **kwargs):
    with open(os.environ["HOOKS_LOG"], "a") as log:
        log.write("quitting\n")
