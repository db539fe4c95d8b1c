"""TaskSets inside TaskSets: self.parent and self.user reach the levels above; interrupt() climbs one level."""

from locust import HttpUser, TaskSet, constant, task


class Inner(TaskSet):
    @task
    def leaf(self):
        self.client.get(f"/bytes/{self.parent.marker}")
        self.client.get(f"/status/{self.user.code}")
        self.interrupt(reschedule=False)


class Outer(TaskSet):
    tasks = {Inner: 1}

    def on_start(self):
        self.marker = 7

    @task
    def outer_task(self):
        self.client.get("/bytes/8")

    @task
    def leave(self):
        self.interrupt(reschedule=False)


class Nested(HttpUser):
    wait_time = constant(0.01)
    tasks = [Outer]

    def on_start(self):
        self.code = 201
