"""A MarkovTaskSet: from `hub` the chain goes to `left` three times as often as to `right`; both come back."""

import itertools

from locust import HttpUser, MarkovTaskSet, constant, transition, transitions

USER_IDS = itertools.count(1)


class Chain(MarkovTaskSet):
    @transitions({"left": 3, "right": 1})
    def hub(self):
        self.client.get(f"/bytes/1?u={self.user.uid}")

    @transition("hub")
    def left(self):
        self.client.get(f"/bytes/2?u={self.user.uid}")

    @transition("hub")
    def right(self):
        self.client.get(f"/bytes/3?u={self.user.uid}")


class Walker(HttpUser):
    wait_time = constant(0.01)
    tasks = [Chain]

    def on_start(self):
        self.uid = next(USER_IDS)
