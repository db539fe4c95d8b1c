"""``RescheduleTask`` and ``RescheduleTaskImmediately`` as Locust defines them: a task ends early, without an
error; the immediate one skips the wait. Judged by the requests the target saw."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from servers import REPO, reset_target, target_stats

SCRIPT = '''
from loadgen import HttpUser, RescheduleTask, RescheduleTaskImmediately, constant, task


class Early(HttpUser):
    wait_time = constant(30)

    @task
    def give_up(self):
        self.client.get("/status/200")
        with self.measure("cache", "lookup"):
            raise {exception}()
        self.client.get("/never")
'''


def _run(tmp_path: Path, target: str, exception: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    script = tmp_path / "early.py"
    script.write_text(SCRIPT.format(exception=exception))
    out = tmp_path / "r.json"
    reset_target(target)
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target, "-u", "1",
                           "-r", "10", "-t", "2s", "--stop-timeout", "0", "-q", "--json", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, json.loads(out.read_text())


def test_reschedule_task_ends_the_task_without_an_error_and_waits(tmp_path: Path, target: str) -> None:
    proc, report = _run(tmp_path, target, "RescheduleTask")
    assert proc.returncode == 0, proc.stderr
    assert target_stats(target)["by_path"] == {"/status/200": 1}  # one task, then the 30 s wait
    assert report["errors"] == [] and report["totals"]["failures"] == 0


def test_reschedule_task_immediately_skips_the_wait(tmp_path: Path, target: str) -> None:
    proc, report = _run(tmp_path, target, "RescheduleTaskImmediately")
    assert proc.returncode == 0, proc.stderr
    seen = target_stats(target)["by_path"]
    assert set(seen) == {"/status/200"} and seen["/status/200"] > 20  # task after task, no 30 s wait
    assert report["errors"] == [] and report["totals"]["failures"] == 0
