"""CatchResponseError raised inside a catch_response block fails that response; the task goes on."""

from locust import HttpUser, constant, task
from locust.exception import CatchResponseError


class Checker(HttpUser):
    wait_time = constant(0.02)

    @task
    def check(self):
        with self.client.get("/status/200", catch_response=True) as resp:
            if resp.status_code == 200:
                raise CatchResponseError("200 is not what we wanted")
        self.client.get("/bytes/3")
