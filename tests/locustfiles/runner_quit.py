"""A task ends the whole test with environment.runner.quit() once 20 requests are recorded."""

from locust import HttpUser, constant, task


class Quitter(HttpUser):
    wait_time = constant(0.02)

    @task
    def work(self):
        self.client.get("/bytes/6")
        if self.environment.stats.total.num_requests >= 20:
            self.environment.runner.quit()
