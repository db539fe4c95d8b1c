"""Locust, throughput: FastHttpUser, no wait, one task (run by bench/.locust-venv, not by loadgen)."""

from locust import FastHttpUser, task


class Fast(FastHttpUser):
    @task
    def index(self):
        self.client.get("/")
