"""``@tag`` with ``-T/--tags`` and ``-E/--exclude-tags``, as Locust defines them, judged by the paths the
target saw (locally and over a master with a worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleet import Fleet, free_port
from servers import REPO, reset_target, target_stats

from loadgen.script.tags import selected, tag

SCRIPT = '''
from loadgen import HttpUser, constant, tag, task


class Shop(HttpUser):
    wait_time = constant(0.05)

    @tag("browse")
    @task(3)
    def home(self):
        self.client.get("/")

    @tag("checkout", "slow")
    @task
    def buy(self):
        self.client.get("/status/201")

    @task
    def untagged(self):
        self.client.get("/bytes/1")


class Admin(HttpUser):
    wait_time = constant(0.05)

    @tag("admin")
    @task
    def admin(self):
        self.client.get("/status/202")
'''


def test_selected_keeps_what_the_filters_say() -> None:
    @tag("a")
    def one() -> None: ...

    @tag("b", "c")
    def two() -> None: ...

    def three() -> None: ...

    table = [("one", one), ("one", one), ("two", two), ("three", three)]
    assert [n for n, _ in selected(table, include=["a"])] == ["one", "one"]  # weights stay
    assert [n for n, _ in selected(table, exclude=["c"])] == ["one", "one", "three"]
    assert [n for n, _ in selected(table, include=["a", "b"], exclude=["c"])] == ["one", "one"]
    assert selected(table) == table


def _run(tmp_path: Path, target: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "tagged.py"
    script.write_text(SCRIPT)
    reset_target(target)
    return subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target, "-u", "4",
                           "-r", "40", "-t", "2s", "-q", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)


def test_tags_run_only_the_tagged_tasks(tmp_path: Path, target: str) -> None:
    proc = _run(tmp_path, target, "-T", "checkout", "--tags", "browse")
    assert proc.returncode == 0, proc.stderr
    assert set(target_stats(target)["by_path"]) == {"/", "/status/201"}  # no untagged task, no Admin


def test_several_tags_after_one_flag_as_locust_reads_them(tmp_path: Path, target: str) -> None:
    proc = _run(tmp_path, target, "-T", "checkout", "browse")
    assert proc.returncode == 0, proc.stderr
    assert set(target_stats(target)["by_path"]) == {"/", "/status/201"}


def test_exclude_tags_leave_out_the_tagged_tasks(tmp_path: Path, target: str) -> None:
    proc = _run(tmp_path, target, "-E", "slow,admin")
    assert proc.returncode == 0, proc.stderr
    assert set(target_stats(target)["by_path"]) == {"/", "/bytes/1"}


def test_tags_that_leave_no_task_are_a_one_line_usage_error(tmp_path: Path, target: str) -> None:
    proc = _run(tmp_path, target, "-T", "nothing")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no task of" in proc.stderr and "-T nothing" in proc.stderr


def test_tags_reach_the_workers(fleet: Fleet, tmp_path: Path, target: str) -> None:
    script = tmp_path / "tagged.py"
    script.write_text(SCRIPT)
    reset_target(target)
    port = free_port()
    master = fleet.master(script, target, "-u", "4", "-r", "40", "-t", "3s", "-T", "admin", port=port)
    worker = fleet.worker(port)
    assert master.wait(60) == 0, master.stderr()
    worker.wait(15)
    assert set(target_stats(target)["by_path"]) == {"/status/202"}
    assert fleet.report()["totals"]["requests"] == target_stats(target)["requests"]
