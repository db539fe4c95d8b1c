"""Memory of one load-generating process over consecutive tests (as a `worker --stay` runs them).

A child process builds an `Environment` per test, as the worker does, runs 2,000 HTTPS users (each with its own
keep-alive connection to nginx, one request a second) and stops and closes it; RSS is read from /proc between
tests. Checks: the per-user cost stays in budget, RSS returns close to where it started once a test is over, and
a second and third test do not grow it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from servers import REPO, nginx_binary, start_nginx, stop_process

USERS = 2000

PROBE = """
from gevent import monkey

monkey.patch_all()

import gc
import json
import os
import resource
import sys
import time

import gevent

from loadgen import HttpUser, constant_throughput, task
from loadgen.engine.environment import Environment
from loadgen.model.options import TestOptions


class Paced(HttpUser):
    wait_time = constant_throughput(1)

    @task
    def index(self):
        self.client.get("/")


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def one_test(users, host):
    env = Environment({"Paced": Paced}, TestOptions(host=host, insecure=True, users=users))
    env.runner.set_users(users, users)
    deadline = time.monotonic() + 60
    while env.runner.user_count < users and time.monotonic() < deadline:
        gevent.sleep(0.05)
    # constant_throughput(1): every user makes a request on its own connection within a second or so of starting
    # (longer on a loaded machine: wait for the connections, not for a time sized for a quiet one)
    while len(env.client_factory.connections) < users and time.monotonic() < deadline:
        gevent.sleep(0.05)
    gevent.sleep(1.0)
    requests = env.flush().requests
    open_conns = len(env.client_factory.connections)
    peak = rss_mb()
    env.stop(5)
    env.close()
    env.flush()
    left = len(env.client_factory.connections)
    del env
    gc.collect()
    return {"peak": peak, "after": rss_mb(), "requests": requests, "open": open_conns, "left": left,
            "fds": len(os.listdir("/proc/self/fd"))}


soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
users, host = int(sys.argv[1]), sys.argv[2]
warm = one_test(20, host)  # one-time costs: imports, SSL context, CA store, hub
result = {"start": rss_mb(), "fds": warm["fds"], "tests": [one_test(users, host) for _ in range(3)]}
print(json.dumps(result))
"""


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (apt-get install nginx)")
def test_memory_returns_after_a_test_and_does_not_grow_over_tests(tmp_path) -> None:
    proc, _, https_url, _ = start_nginx(tmp_path / "nginx")
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(PROBE))
    try:
        out = subprocess.run([sys.executable, str(probe), str(USERS), https_url], capture_output=True, text=True,
                             timeout=120, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    finally:
        stop_process(proc)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    start, (first, second, third) = result["start"], result["tests"]
    growth = first["peak"] - start
    for t in (first, second, third):
        assert t["open"] == USERS and t["requests"] >= USERS, t  # every user held its own TLS connection
        assert t["left"] == 0 and t["fds"] == result["fds"], t  # and every socket was closed
    # per user: ~29 KiB on the bench machine (~18 KiB of it OpenSSL's per-connection state)
    assert 15 * USERS / 1024 < growth < 40 * USERS / 1024, result
    # freed memory goes back to the OS (malloc_trim after close_all); without it RSS stays at the peak
    assert first["after"] - start < 0.35 * growth, result
    # No growth over tests. RSS after a test is steady to a fraction of a MB, so it carries the strict check
    # (a leak of 1 KiB per user a test would add 4 MB by the third). A peak is one instant while 2,000 users are
    # mid-request, and it varies by up to ~15 % of the growth from test to test, in this tree and the one
    # before it alike.
    slack = 0.05 * growth + 2
    assert second["after"] < first["after"] + slack and third["after"] < first["after"] + slack, result
    assert third["after"] < first["after"] + 3, result
    peak_slack = 0.15 * growth + 2
    assert second["peak"] < first["peak"] + peak_slack and third["peak"] < first["peak"] + peak_slack, result
    for t in (second, third):
        assert t["peak"] - start < 40 * USERS / 1024, result  # each test within the per-user budget
