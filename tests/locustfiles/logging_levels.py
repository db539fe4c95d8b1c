"""The locustfile logs at info and debug: -L/--loglevel decides which lines reach --logfile."""

import logging

from locust import HttpUser, constant, events, task


@events.test_start.add_listener
def started(environment, **kwargs):
    logging.info("locustfile-info-line")
    logging.debug("locustfile-debug-line")


class Logged(HttpUser):
    wait_time = constant(0.05)

    @task
    def go(self):
        self.client.get("/")
