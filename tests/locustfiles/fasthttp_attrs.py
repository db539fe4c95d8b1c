"""FastHttpUser's class attributes: network_timeout cuts a slow response, max_redirects follows redirects."""

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class Tuned(FastHttpUser):
    wait_time = constant(0.05)
    network_timeout = 0.3
    connection_timeout = 2.0
    max_redirects = 5
    insecure = True
    concurrency = 2

    @task
    def slow(self):
        self.client.get("/delay/1500", name="slow")

    @task
    def hops(self):
        self.client.get("/redirect/2", name="hops")
