"""tasks as a dict of plain functions (each takes the user) with weights 4:1."""

from locust import HttpUser, constant


def often(user):
    user.client.get("/bytes/40")


def rarely(user):
    user.client.get("/bytes/41")


class Weighted(HttpUser):
    wait_time = constant(0.01)
    tasks = {often: 4, rarely: 1}
