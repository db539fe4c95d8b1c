"""A test that measures nothing fails, with advice: the pure watch, and real runs (local and distributed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet import Fleet, free_port
from servers import REPO, reset_target, target_stats

from loadgen.control.recording_watch import RecordingWatch


def test_tasks_that_record_nothing_for_the_stall_timeout_are_said_once_per_stretch() -> None:
    watch = RecordingWatch(after=3)
    assert [watch.observe(t, iterations=5 * t, recorded=0) for t in (1, 2)] == [None, None]
    notice = watch.observe(3, iterations=15, recorded=0)
    assert notice is not None and notice.kind == "recording" and watch.blind
    assert notice.message.startswith("15 tasks have run in 3 s and recorded nothing: wrap non-HTTP calls")
    assert watch.observe(4, iterations=20, recorded=0) is None  # once per stretch
    assert watch.observe(5, iterations=25, recorded=7) is None  # recording again
    assert watch.observe(9, iterations=45, recorded=7).message.startswith(  # type: ignore[union-attr]
        "20 tasks have run in the last 4 s (since 5 s into the test)")


def test_users_that_wait_or_are_stuck_are_not_a_blind_test() -> None:
    watch = RecordingWatch(after=3)
    # a long wait_time (or users stuck in a task: the stall watchdog's job): no task completed meanwhile
    assert all(watch.observe(t, iterations=4, recorded=4) is None for t in range(1, 60))
    assert not watch.blind and watch.final(4, 4, allow_empty=False) is None


def test_stall_timeout_zero_turns_the_stretch_check_off() -> None:
    watch = RecordingWatch(after=0)
    assert all(watch.observe(t, iterations=10 * t, recorded=0) is None for t in range(1, 30))
    assert not watch.blind  # only a test that recorded nothing at all still fails (final)


def test_nothing_recorded_at_the_end_is_said_with_the_exit_status() -> None:
    notice = RecordingWatch(after=30).final(iterations=12, recorded=0, allow_empty=False)
    assert notice is not None and "nothing was recorded in this test (12 tasks ran)" in notice.message
    assert "exit status 6 (--allow-empty to accept)" in notice.message
    allowed = RecordingWatch(after=30).final(iterations=0, recorded=0, allow_empty=True)
    assert allowed is not None and "exit status 0 (--allow-empty)" in allowed.message


NAIVE = '''
import gevent
from loadgen import HttpUser, constant, task


class Naive(HttpUser):
    """A boto3 user written the obvious way: its calls are not measured."""
    wait_time = constant(0.1)

    @task
    def send(self):
        gevent.sleep(0.01)  # sqs.send_message(...) without self.measure()
'''

GOES_QUIET = '''
import time
import gevent
from loadgen import HttpUser, constant, task

STARTED = time.monotonic()


class Quiet(HttpUser):
    """Measures for 2 s, then only makes unmeasured calls."""
    wait_time = constant(0.1)

    @task
    def work(self):
        if time.monotonic() - STARTED < 2:
            self.client.get("/")
        else:
            gevent.sleep(0.01)
'''


def _run(tmp_path: Path, text: str, target: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    script = tmp_path / "naive.py"
    script.write_text(text)
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target, "-u", "3",
                           "-r", "30", "--json", str(out), "-q", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, json.loads(out.read_text())


def _recording(report: dict) -> list[str]:
    return [w["message"] for w in report["warnings"] if w["kind"] == "recording"]


def test_a_test_that_records_nothing_exits_6_with_advice(tmp_path: Path, target: str) -> None:
    proc, report = _run(tmp_path, NAIVE, target, "-t", "4s", "--stall-timeout", "2s")
    assert proc.returncode == 6, proc.stderr
    assert report["totals"]["requests"] == 0 and report["totals"]["iterations"] > 20
    messages = _recording(report)
    assert any("tasks have run in 2 s and recorded nothing" in m for m in messages), messages  # live
    assert any(m.startswith("nothing was recorded in this test") and "self.measure(" in m for m in messages)
    assert "loadgen: warning: [recording]" in proc.stderr  # while it ran, even under -q


def test_allow_empty_accepts_a_test_that_records_nothing(tmp_path: Path, target: str) -> None:
    proc, report = _run(tmp_path, NAIVE, target, "-t", "2s", "--allow-empty")
    assert proc.returncode == 0, proc.stderr
    assert any("exit status 0 (--allow-empty)" in m for m in _recording(report))


def test_a_test_that_stops_recording_midway_fails(tmp_path: Path, target: str) -> None:
    reset_target(target)
    proc, report = _run(tmp_path, GOES_QUIET, target, "-t", "6s", "--stall-timeout", "2s")
    assert proc.returncode == 6, proc.stderr
    served = target_stats(target)["requests"]
    assert served > 0 and report["totals"]["requests"] == served  # it did record, then went blind
    assert any("recorded nothing" in m and "since" in m for m in _recording(report)), _recording(report)


RAISES = '''
from loadgen import User, constant, task


class Broken(User):
    wait_time = constant(0.1)

    @task
    def fails(self):
        raise RuntimeError("the script is broken")
'''


def test_tasks_that_only_raise_fail_on_their_errors_not_as_an_empty_test(tmp_path: Path, target: str) -> None:
    proc, report = _run(tmp_path, RAISES, target, "-t", "3s", "--stall-timeout", "1s")
    assert proc.returncode == 1, proc.stderr  # the script's exceptions are what it recorded
    assert not _recording(report)
    assert any(e["method"] == "EXCEPTION" for e in report["errors"])


def test_a_fleet_that_records_nothing_exits_6(fleet: Fleet, tmp_path: Path, target: str) -> None:
    script = tmp_path / "naive.py"
    script.write_text(NAIVE)
    port = free_port()
    master = fleet.master(script, target, "-u", "4", "-r", "40", "-t", "4s", "--stall-timeout", "2s", port=port,
                          expect=2)
    for _ in range(2):
        fleet.worker(port)
    assert master.wait(60) == 6, master.stderr()
    report = fleet.report()
    assert report["totals"]["iterations"] > 20  # counted on the workers, merged by the master
    assert any("recorded nothing" in m for m in _recording(report))
