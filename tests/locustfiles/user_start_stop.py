"""User.on_start and on_stop run once per user: on_stop's request is made when the test stops."""

from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get("/status/201")

    def on_stop(self):
        self.client.get("/status/204")

    @task
    def browse(self):
        self.client.get("/")
