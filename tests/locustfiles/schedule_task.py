"""TaskSet.schedule_task(first=True): the scheduled callable runs next, before any other task is picked."""

import itertools

from locust import HttpUser, TaskSet, constant, task

USER_IDS = itertools.count(1)


class Flow(TaskSet):
    def follow_up(self):
        self.client.get(f"/bytes/2?u={self.user.uid}")

    @task
    def start(self):
        self.client.get(f"/bytes/1?u={self.user.uid}")
        self.schedule_task(self.follow_up, first=True)


class Flower(HttpUser):
    wait_time = constant(0.01)
    tasks = [Flow]

    def on_start(self):
        self.uid = next(USER_IDS)
