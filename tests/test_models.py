"""Load models, counted at the target: closed-model pacing, open-model arrivals, stages, coordinated
omission, thresholds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import run_loadgen
from servers import access_log_times, per_second, start_target, stop_process

PACED = """
from loadgen import HttpUser, task, constant_throughput

class Paced(HttpUser):
    wait_time = constant_throughput({rate})

    @task
    def index(self):
        self.client.get("{path}")
"""

OPEN = """
from loadgen import HttpUser, task

class Visitor(HttpUser):
    @task
    def index(self):
        self.client.get("{path}")
"""


def write(tmp_path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)




@pytest.fixture
def logged_target(tmp_path):
    log = tmp_path / "access.log"
    proc, url = start_target(access_log=log)
    yield proc, url, log
    stop_process(proc)




def test_closed_model_rate_exact_and_not_in_lock_step(tmp_path, logged_target) -> None:
    _, url, log = logged_target
    users, rate = 400, 1
    script = write(tmp_path, "paced.py", PACED.format(rate=rate, path="/"))
    result = run_loadgen(["run", "-f", script, "-H", url, "-u", str(users), "-r", "2000", "-t", "9s",
                          "--json", "r.json", "-q"], tmp_path)
    assert result.code == 0, result.stderr
    times = access_log_times(log)
    assert len(times) == result.report["totals"]["requests"]
    start = times[0] + 2.0  # steady once every user has started
    counts = per_second(times, start, 5)
    expected = users * rate
    assert abs(sum(counts) - 5 * expected) <= 0.01 * 5 * expected, counts
    for count in counts:  # phases spread: every second holds its share, no bursts
        assert abs(count - expected) <= 0.02 * expected, counts
    # sub-second spread: no 100 ms slice holds more than twice its share
    slices = per_second([t * 10 for t in times], start * 10, 50)
    assert max(slices) <= 2 * expected / 10, slices


def test_missed_pacing_slots_are_counted_and_warned(tmp_path, target) -> None:
    script = write(tmp_path, "slow.py", PACED.format(rate=10, path="/delay/250"))
    result = run_loadgen(["run", "-f", script, "-H", target, "-u", "2", "-r", "100", "-t", "3s",
                          "--json", "r.json", "-q"], tmp_path)
    report = result.report
    assert report["totals"]["missed"] > 0
    assert sum(p["missed"] for p in report["timeline"]) == report["totals"]["missed"]
    assert any(w["kind"] == "pacing" for w in report["warnings"])


def test_open_model_rate_exact(tmp_path, logged_target) -> None:
    _, url, log = logged_target
    script = write(tmp_path, "open.py", OPEN.format(path="/delay/20"))
    result = run_loadgen(["run", "-f", script, "-H", url, "--arrival-rate", "300", "--max-users", "100",
                          "-t", "7s", "--json", "r.json", "-q"], tmp_path)
    assert result.code == 0, result.stderr
    times = access_log_times(log)
    counts = per_second(times, times[0] + 1.0, 5)
    assert abs(sum(counts) - 1500) <= 15, counts
    report = result.report
    assert report["totals"]["dropped"] == 0
    assert "service_ms" in report["totals"] and "service_ms" in report["endpoints"][0]
    assert report["users"]["peak"] <= 100


def test_stages_follow_the_plan(tmp_path, logged_target) -> None:
    _, url, log = logged_target
    script = write(tmp_path, "paced.py", PACED.format(rate=10, path="/"))
    result = run_loadgen(["run", "-f", script, "-H", url, "--stages", "2s:20,3s:20,2s:0", "--json", "r.json",
                          "-q"], tmp_path)
    assert result.code == 0, result.stderr
    timeline = result.report["timeline"]
    users_at = {round(p["t"]): p["users"] for p in timeline}
    assert 4 <= users_at[1] <= 16  # ramping up
    assert users_at[3] == users_at[4] == 20  # holding
    assert users_at[6] <= 12  # ramping down
    assert 6.5 <= result.report["duration_s"] <= 8.5
    times = access_log_times(log)
    hold = per_second(times, times[0] + 2.5, 2)
    assert all(abs(c - 200) <= 20 for c in hold), hold


def test_frozen_target_shows_in_corrected_latency_not_service_time(tmp_path) -> None:
    proc, url = start_target()
    try:
        script = write(tmp_path, "open.py", OPEN.format(path="/delay/5"))
        run = subprocess.Popen([sys.executable, "-m", "loadgen", "run", "-f", script, "-H", url,
                                "--arrival-rate", "100", "--max-users", "4", "-t", "8s", "--json", "r.json", "-q"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.5)
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(1.2)
        os.kill(proc.pid, signal.SIGCONT)
        _, err = run.communicate(timeout=40)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        stop_process(proc)
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    totals = report["totals"]
    assert totals["latency_ms"]["p99"] >= 500, totals
    assert totals["service_ms"]["p99"] < totals["latency_ms"]["p99"] / 3, totals
    assert totals["latency_ms"]["max"] >= 900
    assert totals["dropped"] > 0 and any(w["kind"] == "dropped" for w in report["warnings"])
    assert sum(p["dropped"] for p in report["timeline"]) == totals["dropped"]


def test_thresholds_pass_fail_and_exit_codes(tmp_path, target) -> None:
    failing = write(tmp_path, "f.py", OPEN.format(path="/status/500"))
    fine = write(tmp_path, "ok.py", OPEN.format(path="/"))
    base = ["-H", target, "-u", "2", "-t", "2s", "--json", "r.json", "-q"]
    result = run_loadgen(["run", "-f", failing, *base, "--threshold", "p99<0.001ms"], tmp_path)
    assert result.code == 4  # a failed threshold outranks failed requests
    assert result.report["thresholds"][0] == {"expression": "p99<0.001ms",
                                              "observed": result.report["totals"]["latency_ms"]["p99"],
                                              "pass": False}
    result = run_loadgen(["run", "-f", fine, *base, "--threshold", "error_rate<0.01", "--threshold", "rps>1",
                          "--threshold", "name=/:p95<5s"], tmp_path)
    assert result.code == 0, result.stderr
    assert all(t["pass"] for t in result.report["thresholds"])
    assert "PASS" in result.stdout
    result = run_loadgen(["run", "-f", fine, *base, "--threshold", "p99<<3"], tmp_path)
    assert result.code == 2 and "threshold 'p99<<3' is malformed" in result.stderr
    result = run_loadgen(["run", "-f", failing, "-H", target, "-u", "2", "-t", "30s", "--json", "r.json", "-q",
                          "--threshold", "error_rate<0.5", "--abort-on-threshold"], tmp_path)
    assert result.code == 4 and result.report["duration_s"] < 10
    assert result.report["stop_reason"].startswith("threshold failed")
