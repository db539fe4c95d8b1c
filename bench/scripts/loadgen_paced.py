"""loadgen, memory and accuracy: each user requests ``/`` at ``BENCH_RATE`` per second (default 1) on its own
keep-alive connection."""

import os

from loadgen import HttpUser, constant_throughput, task


class Paced(HttpUser):
    wait_time = constant_throughput(float(os.environ.get("BENCH_RATE", "1")))

    @task
    def index(self):
        self.client.get("/")
