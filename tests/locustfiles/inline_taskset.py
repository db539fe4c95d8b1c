"""A TaskSet declared inline with @task(3) next to a plain @task(1): weights pick 3:1."""

from locust import HttpUser, TaskSet, constant, task


class Store(HttpUser):
    wait_time = constant(0.01)

    @task(3)
    class Browse(TaskSet):
        @task
        def page(self):
            self.client.get("/bytes/30")
            self.interrupt(reschedule=False)

    @task(1)
    def buy(self):
        self.client.get("/bytes/10")
