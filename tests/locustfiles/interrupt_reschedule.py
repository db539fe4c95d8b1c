"""interrupt(reschedule=True) (the default) has the parent run its next task at once; reschedule=False makes
the parent wait its wait_time first. Both users wait 1 s between tasks and each task takes 0.1 s."""

from locust import HttpUser, TaskSet, constant, task


class Waits(TaskSet):
    @task
    def leave(self):
        self.client.get("/delay/101")
        self.interrupt(reschedule=True)


class NoWait(TaskSet):
    @task
    def leave(self):
        self.client.get("/delay/102")
        self.interrupt(reschedule=False)


class WaitingUser(HttpUser):
    fixed_count = 1
    wait_time = constant(1)
    tasks = [Waits]


class EagerUser(HttpUser):
    fixed_count = 1
    wait_time = constant(1)
    tasks = [NoWait]
