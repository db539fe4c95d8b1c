"""A quitting listener sets process_exit_code = 9 when more than a tenth of the requests failed."""

from locust import HttpUser, constant, events, task


@events.quitting.add_listener
def decide(environment, **kwargs):
    if environment.stats.total.fail_ratio > 0.1:
        environment.process_exit_code = 9
    else:
        environment.process_exit_code = 0


class Failing(HttpUser):
    wait_time = constant(0.02)

    @task
    def fail(self):
        self.client.get("/status/500")
