"""catch_response: success() turns a 404 into a success, failure() turns a 200 into a failure."""

from locust import HttpUser, constant, task


class Judge(HttpUser):
    wait_time = constant(0.02)

    @task
    def judge(self):
        with self.client.get("/nope", catch_response=True, name="missing-ok") as resp:
            if resp.status_code == 404:
                resp.success()
        with self.client.get("/bytes/4", catch_response=True, name="short-body") as resp:
            if len(resp.content) < 10:
                resp.failure(f"only {len(resp.content)} bytes")
