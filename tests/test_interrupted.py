"""Requests and measured blocks cut off by a forced stop are *interrupted*: never successes, never dropped.

Each user's cut-off call is one the target saw arrive (its counters), so the interrupted column is checked
against the server, in one process and over a master with two workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet import Fleet, free_port
from servers import REPO, reset_target, target_stats

CUT_OFF_SCRIPT = '''
import gevent

from loadgen import HttpUser, constant, task


class Poller(HttpUser):
    """A measured block (a stand-in for an SQS long poll) that outlives the stop."""
    fixed_count = 2
    wait_time = constant(60)

    @task
    def poll(self):
        self.client.get("/status/200")
        with self.measure("sqs", "receive"):
            gevent.sleep(100)


class Waiter(HttpUser):
    """A request the server never answers."""
    fixed_count = 3
    wait_time = constant(60)

    @task
    def wait(self):
        self.client.get("/stall", timeout=None)


class Checker(HttpUser):
    """A catch_response check that is still running at the stop."""
    fixed_count = 1
    wait_time = constant(60)

    @task
    def check(self):
        with self.client.get("/delay/0", catch_response=True) as response:
            gevent.sleep(100)
            response.success()
'''


def _rows(report: dict) -> dict[str, dict]:
    return {f"{row['method']} {row['name']}": row for row in report["endpoints"]}


def _assert_cut_off(report: dict, by_path: dict[str, int]) -> None:
    rows = _rows(report)
    # what the target saw: each user's calls arrived once
    assert by_path == {"/status/200": 2, "/stall": 3, "/delay/0": 1}, by_path
    assert rows["GET /status/200"]["requests"] == 2 and rows["GET /status/200"]["interrupted"] == 0
    for key, cut in (("sqs receive", 2), ("GET /stall", 3), ("GET /delay/0", 1)):
        assert rows[key]["interrupted"] == cut, rows[key]
        assert rows[key]["requests"] == 0 and rows[key]["failures"] == 0, rows[key]  # not a success
        assert rows[key]["latency_ms"]["max"] == 0, rows[key]  # no 100 s sample in the latencies
    totals = report["totals"]
    assert totals["requests"] == 2 and totals["interrupted"] == 6
    warning = [w["message"] for w in report["warnings"] if w["kind"] == "interrupted"]
    assert len(warning) == 1 and warning[0].startswith("6 requests were cut off by the stop"), warning
    assert "GET /stall (3)" in warning[0] and "--stop-timeout" in warning[0]


def test_a_forced_stop_counts_what_it_cuts_off_as_interrupted(tmp_path: Path, target: str) -> None:
    script = tmp_path / "cut_off.py"
    script.write_text(CUT_OFF_SCRIPT)
    reset_target(target)
    out = tmp_path / "r.json"
    csv_prefix = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target, "-u", "6", "-r", "50", "-t", "2s",
         "--stop-timeout", "1s", "--json", str(out), "--csv", str(csv_prefix)],
        capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(out.read_text())
    _assert_cut_off(report, target_stats(target)["by_path"])
    assert "interrupted 6: cut off before they finished" in proc.stdout
    assert "Interrupted" in proc.stdout  # the endpoints table's own column
    header, *lines = (csv_prefix.parent / "r_stats.csv").read_text().splitlines()
    assert header.split(",")[-1] == "interrupted"
    assert any(line.startswith("sqs,receive,0,0,") and line.endswith(",2") for line in lines), lines


def test_interrupted_requests_travel_from_workers_to_the_master(fleet: Fleet, tmp_path: Path, target: str) -> None:
    script = tmp_path / "cut_off.py"
    script.write_text(CUT_OFF_SCRIPT)
    reset_target(target)
    port = free_port()
    master = fleet.master(script, target, "-u", "6", "-r", "50", "-t", "3s", "--stop-timeout", "1s", port=port,
                          expect=2)
    workers = [fleet.worker(port) for _ in range(2)]
    assert master.wait(60) in (0, 1), master.stderr()
    for worker in workers:
        worker.wait(15)
    _assert_cut_off(fleet.report(), target_stats(target)["by_path"])
