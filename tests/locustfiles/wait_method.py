"""wait_time written as a method (0.25 s): one user makes about four tasks a second."""

from locust import HttpUser, task


class Slowpoke(HttpUser):
    def wait_time(self):
        return 0.25

    @task
    def fetch(self):
        self.client.get("/bytes/1")
