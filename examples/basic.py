"""A first script: browse the home page, sometimes fetch a slow page and a missing one."""

from loadgen import HttpUser, between, task


class Visitor(HttpUser):
    wait_time = between(0.05, 0.2)

    @task(5)
    def home(self):
        self.client.get("/")

    @task(2)
    def slow_page(self):
        self.client.get("/delay/20", name="/delay/[ms]")

    @task(1)
    def missing(self):
        # 404 is a failure by default; catch_response lets a script decide
        with self.client.get("/status/404", name="/status/[code]", catch_response=True) as resp:
            if resp.status_code == 404:
                resp.success()
