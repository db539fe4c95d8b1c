"""loadgen, throughput: every user requests ``/`` in a tight loop (no wait)."""

from loadgen import HttpUser, constant, task


class Tight(HttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
