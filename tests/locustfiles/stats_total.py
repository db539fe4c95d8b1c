"""environment.stats.total read in test_stop: counts, fail ratio and latencies, written to $HOOKS_LOG."""

import os

from locust import HttpUser, constant, events, task


@events.test_stop.add_listener
def summary(environment, **kwargs):
    total = environment.stats.total
    with open(os.environ["HOOKS_LOG"], "a") as log:
        log.write(f"{total.num_requests} {total.num_failures} {total.fail_ratio:.6f} "
                  f"{total.avg_response_time:.3f} {total.get_response_time_percentile(0.95):.3f}\n")


class Mixed(HttpUser):
    wait_time = constant(0.02)

    @task(3)
    def good(self):
        self.client.get("/delay/20")

    @task(1)
    def bad(self):
        self.client.get("/status/503")
