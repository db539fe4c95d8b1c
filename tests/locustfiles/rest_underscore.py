"""rest_() adds a cache-breaking _=... parameter and names the request without its value."""

from locust import FastHttpUser, constant, task


class Fresh(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def fresh(self):
        with self.rest_("GET", "/echo") as resp:
            if resp.js["path"].startswith("/echo?_="):
                self.client.get("/bytes/8")
