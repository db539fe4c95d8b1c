"""The wait-time helpers side by side, one user each: constant_pacing, constant_throughput, between,
constant and poisson; their rates show at the target."""

from locust import HttpUser, between, constant, constant_pacing, constant_throughput, poisson, task


class Paced(HttpUser):
    fixed_count = 1
    wait_time = constant_pacing(0.2)

    @task
    def fetch(self):
        self.client.get("/delay/50", name="paced")


class Throughput(HttpUser):
    fixed_count = 1
    wait_time = constant_throughput(10)

    @task
    def fetch(self):
        self.client.get("/bytes/2")


class Between(HttpUser):
    fixed_count = 1
    wait_time = between(0.1, 0.3)

    @task
    def fetch(self):
        self.client.get("/bytes/3")


class Constant(HttpUser):
    fixed_count = 1
    wait_time = constant(0.5)

    @task
    def fetch(self):
        self.client.get("/bytes/4")


class Poisson(HttpUser):
    fixed_count = 1
    wait_time = poisson(20)

    @task
    def fetch(self):
        self.client.get("/bytes/5")
