"""Advice that works: every warning's remedy is runnable as printed and right for its cause, and
``--processes`` runs on ``run`` and ``master`` as the CPU warning says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet import Fleet, free_port
from servers import REPO, reset_target, target_stats

from loadgen.control.advice import Advisor
from loadgen.model.health import cpu_notice
from loadgen.outputs.summary import rate_line
from loadgen.stats.aggregate import Aggregate

SCRIPT = '''
from loadgen import HttpUser, constant_throughput, task


class Paced(HttpUser):
    wait_time = constant_throughput(20)

    @task
    def home(self):
        self.client.get("/")
'''


def _missing(cpu: float, remote: bool = False) -> str:
    aggregate = Aggregate()
    aggregate.add_worker("local", "box").cpu_percent = cpu
    aggregate.missed, aggregate.iterations = 30, 70
    Advisor(10, remote=remote).warn(aggregate)
    return next(w["message"] for w in aggregate.warnings if w["kind"] == "pacing")


def test_missed_starts_say_add_users_only_when_the_generator_has_cpu_to_spare() -> None:
    slow_target = _missing(cpu=40)
    assert slow_target.startswith("30 scheduled task starts of 100 (30%) were missed so far")
    assert "add users" in slow_target and "--processes" not in slow_target
    starved = _missing(cpu=99)
    assert "more users would make it worse" in starved and "rerun with --processes auto" in starved
    assert "add users" not in starved
    assert "loadgen worker --processes auto" in _missing(cpu=99, remote=True)


def test_the_cpu_warning_names_a_flag_that_exists_where_it_is_given() -> None:
    assert "rerun with --processes auto" in cpu_notice("this process", "cpu").message
    assert "'loadgen worker --processes auto'" in cpu_notice("worker w1", "cpu:w1", processes=1).message
    assert "add worker machines" in cpu_notice("worker w1", "cpu:w1", processes=4).message


def test_churn_is_said_while_the_test_runs_and_tied_to_the_cpu() -> None:
    aggregate = Aggregate()
    aggregate.add_worker("local", "box").cpu_percent = 97
    aggregate.counters.update(requests=500, opened=500, tls_full=1, tls_resumed=499)
    Advisor(10).warn(aggregate)  # a tick, not the end
    churn = next(w["message"] for w in aggregate.warnings if w["kind"] == "connections")
    assert churn.startswith("500 connections were opened for 500 requests")
    assert "1 full and 499 resumed TLS handshakes" in churn and "spends its CPU on" in churn


def test_the_summary_states_the_target_and_achieved_rate_and_the_missed_starts() -> None:
    report = {"duration_s": 10.0, "totals": {"iterations": 6500, "missed": 5500, "dropped": 0}, "options": {}}
    assert rate_line(report) == "task starts: target 1,200.0/s, achieved 650.0/s; 5,500 starts missed"
    assert rate_line({"duration_s": 10.0, "totals": {"iterations": 10}, "options": {}}) == ""


def _run(tmp_path: Path, target: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    script = tmp_path / "paced.py"
    script.write_text(SCRIPT)
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target, "-u", "6",
                           "-r", "30", "-t", "3s", "-q", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=90, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc, json.loads(out.read_text())


def test_run_with_processes_spreads_the_users_over_processes(tmp_path: Path, target: str) -> None:
    reset_target(target)
    _, report = _run(tmp_path, target, "--processes", "2")
    rows = report["workers"]
    assert len(rows) == 2 and sorted(row["users"] for row in rows) == [3, 3]
    assert report["totals"]["requests"] == target_stats(target)["requests"] > 0
    assert sum(row["requests"] for row in rows) == report["totals"]["requests"]
    assert target_stats(target)["connections"] == 6  # each user kept its one connection


def test_processes_auto_is_accepted_by_run(tmp_path: Path, target: str) -> None:
    reset_target(target)
    _, report = _run(tmp_path, target, "--processes", "auto")
    assert report["totals"]["requests"] == target_stats(target)["requests"] > 0


def test_a_bad_processes_value_is_a_one_line_usage_error(tmp_path: Path, target: str) -> None:
    script = tmp_path / "paced.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target,
                           "--processes", "lots"], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--processes 'lots': give a number >= 1 or 'auto'" in proc.stderr


def test_master_with_processes_runs_its_own_workers(fleet: Fleet, tmp_path: Path, target: str) -> None:
    script = tmp_path / "paced.py"
    script.write_text(SCRIPT)
    reset_target(target)
    port = free_port()
    master = fleet.master(script, target, "-u", "4", "-r", "20", "-t", "3s", "--processes", "2", port=port)
    assert master.wait(60) == 0, master.stderr()
    report = fleet.report()
    assert len(report["workers"]) == 2 and {row["state"] for row in report["workers"]} == {"done"}
    assert report["totals"]["requests"] == target_stats(target)["requests"] > 0
