"""StopUser after three requests: a stopped user is not replaced, so each user makes exactly three."""

from locust import HttpUser, constant, task
from locust.exception import StopUser


class ThreeAndOut(HttpUser):
    wait_time = constant(0.01)

    def on_start(self):
        self.done = 0

    @task
    def visit(self):
        self.client.get("/bytes/3")
        self.done += 1
        if self.done == 3:
            raise StopUser()
