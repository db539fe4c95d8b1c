"""A LoadTestShape that calls reset_time() on its first tick and peaks at 4 users (spawn rate 20), then ends."""

import itertools

from locust import HttpUser, LoadTestShape, constant, task

USER_IDS = itertools.count(2001)


class Ramp(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get(f"/bytes/{next(USER_IDS)}")

    @task
    def tick(self):
        self.client.get("/")


class Peak(LoadTestShape):
    started = False

    def tick(self):
        if not self.started:
            self.started = True
            self.reset_time()
        run_time = self.get_run_time()
        if run_time < 0.5:
            return (2, 20)
        if run_time < 1.5:
            return (4, 20)
        if run_time < 2.2:
            return (1, 20)
        return None
