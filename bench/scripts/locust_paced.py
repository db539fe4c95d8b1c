"""Locust, memory: FastHttpUser at ``BENCH_RATE`` tasks per second per user (default 1)."""

import os

from locust import FastHttpUser, constant_throughput, task


class Paced(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("BENCH_RATE", "1")))

    @task
    def index(self):
        self.client.get("/")
