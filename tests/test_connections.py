"""Connections as the server sees them: TLS resumption counted by nginx, shared pools, idle reaping, users
that stop close their connections, and nothing left open after a test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import gevent
import pytest
from conftest import run_loadgen
from servers import nginx_binary, start_nginx, stop_process, target_stats

from loadgen.client import COUNTERS, ClientFactory, ClientSettings


def open_connections(url: str) -> int:
    """The target's open connections, less the one that asks."""
    return target_stats(url)["open_connections"] - 1


needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (apt-get install nginx)")

RECONNECT = """
from loadgen import HttpUser, constant, task

class Reconnect(HttpUser):
    keep_alive = {keep_alive}
    wait_time = constant({wait})

    @task
    def index(self):
        self.client.get("/")
"""


def _script(tmp_path: Path, keep_alive: bool = True, wait: float = 0.0) -> str:
    path = tmp_path / "conn_users.py"
    path.write_text(textwrap.dedent(RECONNECT.format(keep_alive=keep_alive, wait=wait)))
    return str(path)


def _handshakes(access_log: str) -> Counter[str]:
    """``$ssl_session_reused`` of each distinct ``$connection`` in nginx's log: 'r' resumed, '.' full."""
    first: dict[str, str] = {}
    with open(access_log) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 5:
                first.setdefault(fields[4], fields[3])
    return Counter(first.values())


@needs_nginx
@pytest.mark.parametrize("resume", [True, False])
def test_tls_resumption_as_nginx_logged_it(tmp_path, resume) -> None:
    proc, _, https_url, access_log = start_nginx(tmp_path / "nginx")
    try:
        args = ["run", "-f", _script(tmp_path, keep_alive=False), "-H", https_url, "--insecure", "-u", "10",
                "-r", "100", "-t", "3s", "-q", "--json", "r.json"]
        if not resume:
            args.append("--no-tls-resume")
        result = run_loadgen(args, tmp_path)
    finally:
        stop_process(proc)
    report = result.report
    assert report is not None and result.code == 0, result.stderr
    seen = _handshakes(access_log)
    conns = report["connections"]
    assert conns["tls_handshakes"] == conns["opened"] == seen["r"] + seen["."] >= 200
    assert conns["tls_resumed"] == seen["r"] and conns["tls_full"] == seen["."]
    if resume:
        assert seen["r"] >= 0.9 * (seen["r"] + seen["."]), seen
    else:
        assert seen["r"] == 0, seen


def test_shared_pool_caps_connections_and_closes_them(tmp_path, fresh_target) -> None:
    result = run_loadgen(["run", "-f", _script(tmp_path), "-H", fresh_target, "-u", "50", "-r", "1000",
                          "-t", "2s", "-q", "--pool", "shared:4", "--json", "r.json"], tmp_path)
    stats = target_stats(fresh_target)
    report = result.report
    assert report is not None and report["totals"]["failures"] == 0, result.stderr
    assert report["totals"]["requests"] >= 1000
    assert stats["connections"] == report["connections"]["opened"] <= 4
    assert open_connections(fresh_target) == 0  # every socket closed once the test is over


def test_users_that_stop_close_their_connections(tmp_path, fresh_target) -> None:
    """Ramp 0 -> 40 users, hold, ramp down to 10: the target's open connections follow the users."""
    cmd = [sys.executable, "-m", "loadgen", "run", "-f", _script(tmp_path, wait=0.05), "-H", fresh_target,
           "--stages", "1s:40,1.5s:40,0.5s:10,2s:10", "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - t0 < 30:
            samples.append((time.monotonic() - t0, open_connections(fresh_target)))
            time.sleep(0.1)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        stop_process(proc)
    peak = max(n for _, n in samples)
    assert peak == 40, samples
    # after the ramp down (t > 3 s of the test, plus start-up) the open connections are those of 10 users
    late = [n for t, n in samples if n <= 10 and t > 2]
    assert late and 10 in late, samples
    assert open_connections(fresh_target) == 0


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_idle_connections_are_reaped_and_close_all_leaves_no_socket(fresh_target) -> None:
    recorder = _Recorder()
    warm = ClientFactory(ClientSettings(), recorder)  # the hub's own descriptors (epoll, eventfd) exist after this
    warm.session(fresh_target).get("/")
    warm.close_all()
    recorder.requests = 0
    before = _fds()
    factory = ClientFactory(ClientSettings(idle_timeout=0.6), recorder)
    sessions = [factory.session(fresh_target) for _ in range(30)]
    shared = factory.session(fresh_target, pool="shared", pool_size=3)
    gevent.joinall([gevent.spawn(s.get, "/") for s in sessions + [shared] * 6], timeout=10)
    assert recorder.failures == 0 and recorder.requests == 36
    assert _fds() - before >= 31
    assert open_connections(fresh_target) >= 31
    closed = COUNTERS.closed
    gevent.sleep(1.6)  # idle_timeout 0.6 s, the reaper looks every 0.5 s
    assert COUNTERS.closed - closed >= 31
    assert open_connections(fresh_target) == 0
    assert _fds() == before
    # new requests after the reaping open fresh connections; close_all closes them and stops the reaper
    gevent.joinall([gevent.spawn(s.get, "/") for s in sessions[:5]], timeout=10)
    assert _fds() - before == 5
    factory.close_all()
    assert _fds() == before and not factory.connections
    assert open_connections(fresh_target) == 0


class _Recorder:
    def __init__(self) -> None:
        self.requests = self.failures = 0

    def record(self, method, name, latency_us, nbytes, error=None, queued_us=0, *phases) -> None:  # noqa: ANN001
        self.requests += 1
        self.failures += error is not None
