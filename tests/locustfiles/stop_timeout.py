"""A task in flight when the run time ends: -s (stop timeout) lets it finish, so its second request is made."""

from locust import HttpUser, constant, task


class Finisher(HttpUser):
    wait_time = constant(0.01)

    @task
    def long_task(self):
        self.client.get("/delay/1200")
        self.client.get("/bytes/9")
