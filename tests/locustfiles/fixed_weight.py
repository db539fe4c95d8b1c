"""fixed_count and weight: of 5 users, 1 is Boss (fixed), then 3 Workers to 1 Intern by weight. Each user's
on_start announces its class with a status code."""

from locust import HttpUser, constant, task


class Boss(HttpUser):
    fixed_count = 1
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get("/status/201")

    @task
    def work(self):
        self.client.get("/bytes/1")


class Worker(HttpUser):
    weight = 3
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get("/status/202")

    @task
    def work(self):
        self.client.get("/bytes/2")


class Intern(HttpUser):
    weight = 1
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get("/status/203")

    @task
    def work(self):
        self.client.get("/bytes/3")
