"""A MarkovTaskSet whose chain is a cycle written three ways: a list of names, a list of (name, weight), a
stacked @transition; the first task declared starts the chain."""

import itertools

from locust import HttpUser, MarkovTaskSet, constant, transition, transitions

USER_IDS = itertools.count(1)


class Cycle(MarkovTaskSet):
    @transitions(["two"])
    def one(self):
        self.client.get(f"/bytes/1?u={self.user.uid}")

    @transitions([("three", 2)])
    def two(self):
        self.client.get(f"/bytes/2?u={self.user.uid}")

    @transition("one", weight=5)
    def three(self):
        self.client.get(f"/bytes/3?u={self.user.uid}")


class Cycler(HttpUser):
    wait_time = constant(0.01)
    tasks = [Cycle]

    def on_start(self):
        self.uid = next(USER_IDS)
