"""TaskSets, one locustfile for both tools (``bench/tasksets.py``): run unmodified by Locust and by loadgen.

A shopper picks a browsing TaskSet (weight 3: weighted tasks, left through ``interrupt()``) or a
SequentialTaskSet checkout flow (weight 1: four GETs in order, then ``interrupt()``). No wait, GETs only.
``BENCH_CLIENT=fast`` makes the user a ``FastHttpUser`` (Locust's geventhttpclient client), otherwise it is an
``HttpUser`` (Locust's requests-based client); loadgen answers both with its own client.
"""

import os
import random

from locust import FastHttpUser, HttpUser, SequentialTaskSet, TaskSet, constant, task

User = FastHttpUser if os.environ.get("BENCH_CLIENT") == "fast" else HttpUser


class Browse(TaskSet):
    @task(6)
    def home(self):
        self.client.get("/")

    @task(3)
    def product(self):
        self.client.get(f"/product/{random.randint(1, 1000)}", name="/product/[id]")

    @task(2)
    def search(self):
        self.client.get("/search", params={"q": random.choice(("shoes", "hats", "socks"))})

    @task(1)
    def leave(self):
        self.interrupt()


class Checkout(SequentialTaskSet):
    @task
    def cart(self):
        self.client.get("/cart")

    @task
    def address(self):
        self.client.get("/checkout/address")

    @task
    def pay(self):
        self.client.get("/checkout/pay")

    @task
    def confirm(self):
        self.client.get("/checkout/confirm")
        self.interrupt()


class Shopper(User):
    wait_time = constant(0)
    tasks = {Browse: 3, Checkout: 1}
