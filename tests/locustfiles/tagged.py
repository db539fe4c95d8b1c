"""@tag on tasks and on a TaskSet class (its tasks inherit the tag), filtered with -T and -E."""

from locust import HttpUser, TaskSet, constant, tag, task


@tag("reports")
class Reports(TaskSet):
    @task
    def report(self):
        self.client.get("/bytes/60")
        self.interrupt(reschedule=False)


class Shop(HttpUser):
    wait_time = constant(0.01)
    tasks = [Reports]

    @tag("browse")
    @task(3)
    def home(self):
        self.client.get("/")

    @tag("checkout", "slow")
    @task
    def buy(self):
        self.client.get("/status/201")

    @task
    def untagged(self):
        self.client.get("/bytes/1")


class Admin(HttpUser):
    wait_time = constant(0.01)

    @tag("admin")
    @task
    def admin(self):
        self.client.get("/status/202")
