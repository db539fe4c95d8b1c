"""A SequentialTaskSet that hands control back to its user with interrupt() before its third task."""

import itertools

from locust import HttpUser, SequentialTaskSet, constant, task

USER_IDS = itertools.count(1)


class Wizard(SequentialTaskSet):
    @task
    def step_one(self):
        self.client.get(f"/bytes/1?u={self.user.uid}")

    @task
    def step_two(self):
        self.client.get(f"/bytes/2?u={self.user.uid}")
        self.interrupt(reschedule=False)

    @task
    def never(self):
        self.client.get(f"/bytes/3?u={self.user.uid}")


class Visitor(HttpUser):
    wait_time = constant(0.01)
    tasks = {Wizard: 1}

    def on_start(self):
        self.uid = next(USER_IDS)

    @task
    def home(self):
        self.client.get(f"/status/203?u={self.uid}")
