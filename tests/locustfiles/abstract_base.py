"""An abstract base user holds the task; only its concrete subclass runs."""

from locust import HttpUser, constant, task


class Base(HttpUser):
    abstract = True
    wait_time = constant(0.02)
    size = 1

    @task
    def fetch(self):
        self.client.get(f"/bytes/{self.size}")


class Concrete(Base):
    size = 2
