"""on_start/on_stop of a TaskSet run each time the set is entered and left."""

from locust import HttpUser, TaskSet, constant, task


class Session(TaskSet):
    def on_start(self):
        self.client.get("/status/201")

    def on_stop(self):
        self.client.get("/status/202")

    @task
    def work(self):
        self.client.get("/bytes/5")
        self.interrupt(reschedule=False)


class Member(HttpUser):
    wait_time = constant(0.02)
    tasks = [Session]
