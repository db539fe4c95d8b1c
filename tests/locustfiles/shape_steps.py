"""A LoadTestShape stepping 1 -> 3 -> 2 users, then None (the test ends). Each user's on_start visits a path
of its own, so the target counts the distinct users that ever ran."""

import itertools

from locust import HttpUser, LoadTestShape, constant, task

USER_IDS = itertools.count(1001)


class Stepper(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get(f"/bytes/{next(USER_IDS)}")

    @task
    def tick(self):
        self.client.get("/")


class Steps(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        if run_time < 0.8:
            return (1, 10)
        if run_time < 1.8:
            return (3, 10)
        if run_time < 2.6:
            return (2, 10)
        return None
