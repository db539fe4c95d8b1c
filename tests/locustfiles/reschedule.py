"""RescheduleTaskImmediately skips the wait; RescheduleTask does not. The wait is 10 s and the run 2 s, so
only the immediate reschedules add requests."""

from locust import HttpUser, constant, task
from locust.exception import RescheduleTask, RescheduleTaskImmediately


class Eager(HttpUser):
    fixed_count = 1
    wait_time = constant(10)

    def on_start(self):
        self.n = 0

    @task
    def go(self):
        self.n += 1
        self.client.get("/bytes/11")
        if self.n < 5:
            raise RescheduleTaskImmediately()


class Patient(HttpUser):
    fixed_count = 1
    wait_time = constant(10)

    @task
    def go(self):
        self.client.get("/bytes/12")
        raise RescheduleTask()
