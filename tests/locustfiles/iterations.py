"""One request per task, so -i N gives exactly N requests at the target, however many users share them."""

from locust import HttpUser, constant, task


class Counted(HttpUser):
    wait_time = constant(0.01)

    @task(2)
    def one(self):
        self.client.get("/bytes/1")

    @task(1)
    def two(self):
        self.client.get("/bytes/2")
