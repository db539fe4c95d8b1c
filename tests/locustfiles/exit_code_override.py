"""A quitting listener forgives the failures: process_exit_code = 0 although every request failed."""

from locust import HttpUser, constant, events, task


@events.quitting.add_listener
def forgive(environment, **kwargs):
    environment.process_exit_code = 0


class Forgiven(HttpUser):
    wait_time = constant(0.02)

    @task
    def fail(self):
        self.client.get("/status/502")
