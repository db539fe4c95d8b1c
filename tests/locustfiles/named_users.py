"""Three user classes; naming some on the command line runs only those."""

from locust import HttpUser, constant, task


class Alpha(HttpUser):
    wait_time = constant(0.02)

    @task
    def go(self):
        self.client.get("/status/201")


class Beta(HttpUser):
    wait_time = constant(0.02)

    @task
    def go(self):
        self.client.get("/status/202")


class Gamma(HttpUser):
    wait_time = constant(0.02)

    @task
    def go(self):
        self.client.get("/status/203")
