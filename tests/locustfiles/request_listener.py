"""An events.request listener counts every request and failure; test_stop writes the tally to $HOOKS_LOG."""

import os

from locust import HttpUser, constant, events, task

TALLY = {"requests": 0, "failures": 0, "names": set()}


@events.request.add_listener
def count(request_type, name, response_time, response_length, exception, context, **kwargs):
    TALLY["requests"] += 1
    TALLY["failures"] += exception is not None
    TALLY["names"].add(f"{request_type}:{name}")


@events.test_stop.add_listener
def write(environment, **kwargs):
    with open(os.environ["HOOKS_LOG"], "a") as log:
        log.write(f"{TALLY['requests']} {TALLY['failures']} {','.join(sorted(TALLY['names']))}\n")


class Counted(HttpUser):
    wait_time = constant(0.02)

    @task
    def ok(self):
        self.client.get("/bytes/2")

    @task
    def bad(self):
        self.client.get("/status/500")
