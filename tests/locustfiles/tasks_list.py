"""tasks as a list: a function, a TaskSet and the same function again (list entries weigh one each)."""

from locust import HttpUser, TaskSet, constant, task


def plain(user):
    user.client.get("/bytes/50")


class Sub(TaskSet):
    @task
    def sub(self):
        self.client.get("/bytes/51")
        self.interrupt(reschedule=False)


class Listed(HttpUser):
    wait_time = constant(0.01)
    tasks = [plain, Sub, plain]
