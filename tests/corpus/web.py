"""A plain, valid script: the hostile options and odd responses are applied to it.

CORPUS_PATH is one path (recorded as "corpus") or several, comma-separated (each recorded under its path).
"""

import os

from loadgen import HttpUser, constant, task

PATHS = os.environ.get("CORPUS_PATH", "/").split(",")
TIMEOUT = float(os.environ.get("CORPUS_TIMEOUT", "2"))


class Web(HttpUser):
    wait_time = constant(0.05)

    @task
    def get(self):
        for path in PATHS:
            self.client.get(path, name="corpus" if len(PATHS) == 1 else path, timeout=TIMEOUT)
