"""A SequentialTaskSet: each user's requests come in declaration order, round after round."""

import itertools

from locust import HttpUser, SequentialTaskSet, constant, task

USER_IDS = itertools.count(1)


class Checkout(SequentialTaskSet):
    @task
    def first(self):
        self.client.get(f"/bytes/1?u={self.user.uid}")

    @task
    def second(self):
        self.client.get(f"/bytes/2?u={self.user.uid}")

    @task(2)
    def third(self):
        self.client.get(f"/bytes/3?u={self.user.uid}")


class Shopper(HttpUser):
    wait_time = constant(0.01)
    tasks = [Checkout]

    def on_start(self):
        self.uid = next(USER_IDS)
