"""End-to-end: ``python -m loadgen run`` processes against the built-in target — stuck users, a blocked
event loop, patching order, memory ceiling, file limits and shutdown by signal."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fleet import Fleet
from servers import REPO, start_target, stop_process

STUCK_SCRIPT = '''
import gevent
from gevent import monkey

from loadgen import HttpUser, constant, task

blocking_sleep = monkey.get_original("time", "sleep")


class Stuck(HttpUser):
    weight = 3

    @task
    def wait_forever(self):
        self.client.get("/stall", timeout=None)


class Blocker(HttpUser):
    fixed_count = 1
    wait_time = constant(0.5)

    @task
    def block_the_loop(self):
        blocking_sleep(1.2)
'''

HANG_SCRIPT = '''
from loadgen import HttpUser, task


class Hang(HttpUser):
    @task
    def hang(self):
        self.client.get("/")
        self.client.get("/stall", timeout=None)
'''

WEB_SCRIPT = '''
from loadgen import HttpUser, constant, task


class Web(HttpUser):
    wait_time = constant(0.1)

    @task
    def index(self):
        self.client.get("/")
'''


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    proc, url = start_target()
    yield url
    stop_process(proc)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*extra.pop("PYTHONPATH", "").split(os.pathsep), str(REPO)]).strip(os.pathsep)
    env.update(extra)
    return env


def run(script: Path, *args: str, timeout: float = 40, env: dict[str, str] | None = None,
        preexec: object = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env or _env(), cwd=REPO,
                          stdin=subprocess.DEVNULL, preexec_fn=preexec)  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def warnings_of(report: dict, kind: str) -> list[str]:
    return [w["message"] for w in report["warnings"] if w["kind"] == kind]


STUCK_IN_ON_START = '''
from loadgen import HttpUser, constant, task


class Login(HttpUser):
    wait_time = constant(1)

    def on_start(self):
        self.client.get("/stall", timeout=None)  # a login against a server that never answers

    @task
    def browse(self):
        self.client.get("/")
'''


def test_a_user_stuck_in_on_start_is_named(tmp_path: Path, target: str) -> None:
    """The watchdog watches on_start (and on_stop), not only tasks: it names the hook, file and line."""
    script = write(tmp_path, "login_script.py", STUCK_IN_ON_START)
    out = tmp_path / "r.json"
    proc = run(script, "-H", target, "-u", "2", "-r", "20", "-t", "4s", "--stall-timeout", "1", "-q",
               "--stop-timeout", "1", "--json", str(out))
    assert "Traceback" not in proc.stderr, proc.stderr
    stalls = warnings_of(json.loads(out.read_text()), "stall")
    named = [m for m in stalls if m.startswith("Login.on_start has not returned")]
    assert len(named) == 2, stalls  # each user once
    assert all("login_script.py:" in m and "on_start" in m for m in named)
    assert "loadgen: warning: [stall] Login.on_start has not returned" in proc.stderr  # live, even under -q


def test_stuck_users_stuck_test_and_blocked_loop(tmp_path: Path, target: str) -> None:
    script = write(tmp_path, "stuck_script.py", STUCK_SCRIPT)
    out = tmp_path / "r.json"
    started = time.monotonic()
    proc = run(script, "-H", target, "-u", "4", "-r", "20", "-t", "5s", "--stall-timeout", "2",
               "--stop-timeout", "1", "--json", str(out))
    assert time.monotonic() - started < 5 + 1 + 10
    # nothing completed: the stuck requests are interrupted at the stop, the blocker's tasks measure nothing
    assert "Traceback" not in proc.stderr and proc.returncode == 6, proc.stderr
    report = json.loads(out.read_text())
    stalls = warnings_of(report, "stall")
    per_user = [m for m in stalls if m.startswith("Stuck.wait_forever has not returned")]
    assert len(per_user) == 3, stalls  # each stuck user once
    for message in per_user:
        assert "stuck_script.py:" in message and "wait_forever" in message
        assert "loadgen/client/" in message  # the innermost library frame: where the socket read waits
    stuck = [m for m in stalls if m.startswith("the whole test is stuck")]
    assert len(stuck) == 1 and "3 of 3 stuck users wait at stuck_script.py:" in stuck[0], stalls
    blocking = warnings_of(report, "blocking")
    assert len(blocking) == 1, report["warnings"]  # the same stack blocks again and again: one warning...
    assert "stuck_script.py:" in blocking[0] and "block_the_loop" in blocking[0]
    times = int(blocking[0].split(" blocked ")[1].split(" times ")[0])  # ...that counts every block
    longest = float(blocking[0].split("the longest ")[1].split(" s)")[0])
    assert times >= 2 and 0.9 <= longest <= 3.0, blocking[0]
    assert not warnings_of(report, "patching")
    # plain console: every new warning is printed at once on stderr
    assert "loadgen: warning: [stall] Stuck.wait_forever has not returned" in proc.stderr
    assert "loadgen: warning: [blocking]" in proc.stderr


BLOCKS_FOR_40_S = '''
from gevent import monkey

from loadgen import HttpUser, constant, task

blocking_sleep = monkey.get_original("time", "sleep")


class Blocker(HttpUser):
    wait_time = constant(0.2)

    @task
    def call_an_unpatched_client(self):
        self.client.get("/")
        if not getattr(Blocker, "blocked", False):
            Blocker.blocked = True
            blocking_sleep(40)  # a C client that never yields, for longer than the whole test
'''


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> tuple[float, str]:
    """Read stderr until ``text`` shows up; returns when (monotonic) and what was read."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if text in seen:
            return time.monotonic(), seen
    raise AssertionError(f"{text!r} not on stderr within {timeout} s: {seen}")


def test_a_blocked_loop_is_said_while_blocked_and_the_run_time_still_ends_the_test(tmp_path: Path,
                                                                                     target: str) -> None:
    from servers import reset_target, target_stats

    script = write(tmp_path, "blocker_script.py", BLOCKS_FOR_40_S)
    out = tmp_path / "r.json"
    reset_target(target)
    started = time.monotonic()
    proc = _start(script, "-H", target, "-u", "2", "-r", "20", "-t", "3s", "--stop-timeout", "1", "-q",
                  "--json", str(out))
    try:
        _, seen = _read_until(proc, "blocking_sleep(40)", timeout=20)  # the stack's last line
        assert proc.poll() is None  # said while the loop is still blocked
        assert "has been blocked for" in seen and 'blocker_script.py", line' in seen, seen
        code = proc.wait(timeout=30)
        ended = time.monotonic() - started
    finally:
        stderr = stop_and_read(proc)
    assert ended < 20, f"the test ran {ended:.0f} s: the 40 s block was waited for"  # -t 3s +1 s stop +1 s
    assert "Traceback" not in stderr and code == 1, stderr  # a forced exit: the test did not end as planned
    report = json.loads(out.read_text())
    assert report["stop_reason"].startswith("forced: the event loop was blocked past the end of the test")
    assert "blocker_script.py:" in report["stop_reason"]
    assert report["totals"]["requests"] == target_stats(target)["requests"] >= 1  # what was recorded is kept
    assert any("a call that never yields held every user" in m for m in warnings_of(report, "blocking"))


def test_a_second_sigint_ends_a_test_whose_loop_is_blocked(tmp_path: Path, target: str) -> None:
    script = write(tmp_path, "blocker_script.py", BLOCKS_FOR_40_S)
    out = tmp_path / "r.json"
    proc = _start(script, "-H", target, "-u", "2", "-r", "20", "-q", "--json", str(out))  # no run time
    code, elapsed, stderr = _two_sigints(proc, lambda: _read_until(proc, "has been blocked for", timeout=20))
    assert elapsed < 5, f"exited {elapsed:.1f} s after the second SIGINT"
    assert "Traceback" not in stderr and code == 1, stderr
    report = json.loads(out.read_text())
    assert report["stop_reason"].startswith("forced: a second signal while the event loop was blocked")
    assert report["totals"]["requests"] >= 1


def test_patching_order_via_sitecustomize(tmp_path: Path, target: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import ssl  # noqa: F401\nimport threading\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
    )
    script = write(tmp_path, "web.py", WEB_SCRIPT)
    out = tmp_path / "r.json"
    proc = run(script, "-H", target, "-t", "1s", "-q", "--json", str(out), env=_env(PYTHONPATH=str(site)))
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr
    patching = warnings_of(json.loads(out.read_text()), "patching")
    assert any("imported before gevent patched: ssl" in m and "threading (1 threads already running)" in m
               for m in patching), patching


def test_max_rss_stops_spawning(tmp_path: Path, target: str) -> None:
    script = write(tmp_path, "web.py", WEB_SCRIPT)
    out = tmp_path / "r.json"
    proc = run(script, "-H", target, "-u", "50", "-r", "10", "-t", "3s", "-q", "--max-rss", "1",
               "--json", str(out))
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    memory = warnings_of(report, "memory")
    assert len(memory) == 1 and "above --max-rss 1 MB: spawning stopped" in memory[0]
    assert 1 <= report["users"]["peak"] < 30, report["users"]
    assert report["totals"]["requests"] > 0


def _small_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_small_open_files_limit(tmp_path: Path, target: str) -> None:
    """ulimit -n 256 and 400 users: a limits warning at start; running out of files is counted failures."""
    script = write(tmp_path, "web.py", WEB_SCRIPT)
    out = tmp_path / "r.json"
    started = time.monotonic()
    proc = run(script, "-H", target, "-u", "400", "-r", "400", "-t", "2s", "-q", "--stop-timeout", "2",
               "--json", str(out), preexec=_small_nofile)
    assert time.monotonic() - started < 20
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr
    report = json.loads(out.read_text())
    limits = warnings_of(report, "limits")
    assert any("400 users need about 400 sockets" in m and "256 files" in m for m in limits), limits
    assert report["totals"]["requests"] > 0


def _start(script: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "loadgen", "run", "-f", str(script), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO,
                            stdin=subprocess.DEVNULL)


def _wait_for_requests(target: str, count: int, timeout: float = 10) -> None:
    from servers import target_stats

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = target_stats(target)
        if stats.get("requests", 0) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the target saw fewer than {count} requests: {stats}")


def test_sigterm_stops_within_stop_timeout_and_writes_the_report(tmp_path: Path, target: str) -> None:
    from servers import reset_target

    script = write(tmp_path, "hang.py", HANG_SCRIPT)
    out = tmp_path / "r.json"
    reset_target(target)
    proc = _start(script, "-H", target, "-u", "3", "-r", "50", "--stop-timeout", "2", "-q", "--json", str(out))
    try:
        _wait_for_requests(target, 6)  # each user: "/" answered, "/stall" never will be
        time.sleep(0.3)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=2 + 8)
        elapsed = time.monotonic() - signalled
    finally:
        stderr = stop_and_read(proc)
    assert elapsed < 2 + 2, f"exited {elapsed:.1f} s after SIGTERM"
    assert code == 0 and "Traceback" not in stderr, stderr
    report = json.loads(out.read_text())
    assert report["stop_reason"] == "signal SIGTERM"
    rows = {e["name"]: e for e in report["endpoints"]}
    assert rows["/"]["requests"] == 3 and rows["/"]["failures"] == 0


def test_second_sigint_forces_an_immediate_exit_with_a_report(tmp_path: Path, target: str) -> None:
    script = write(tmp_path, "hang.py", HANG_SCRIPT)
    out = tmp_path / "r.json"
    proc = _start(script, "-H", target, "-u", "2", "-r", "50", "--stop-timeout", "60", "-q", "--json", str(out))
    code, elapsed, stderr = _two_sigints(proc, lambda: time.sleep(1.5))
    assert elapsed < 3, f"exited {elapsed:.1f} s after the second SIGINT"
    assert code == 0 and "Traceback" not in stderr, stderr
    report = json.loads(out.read_text())
    assert report["endpoints"] and report["endpoints"][0]["name"] == "/"


def _two_sigints(proc: subprocess.Popen[str], first_wait: Callable[[], object]) -> tuple[int, float, str]:
    """After ``first_wait``: a SIGINT that the process survives (it waits for its users), then a second one;
    returns the exit code, the seconds from the second signal to the exit, and stderr."""
    try:
        first_wait()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # the first Ctrl-C waits for the users (the stop timeout)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        elapsed = time.monotonic() - signalled
    finally:
        stderr = stop_and_read(proc)
    return code, elapsed, stderr


def stop_and_read(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    return proc.stderr.read() if proc.stderr else ""


def test_one_sigint_ends_a_blocked_test_after_the_stop_timeout(tmp_path: Path, target: str) -> None:
    """A first Ctrl-C asks for a stop within --stop-timeout; a blocked loop does not get longer than that."""
    script = write(tmp_path, "blocker_script.py", BLOCKS_FOR_40_S)
    out = tmp_path / "r.json"
    proc = _start(script, "-H", target, "-u", "2", "-r", "20", "--stop-timeout", "1", "-q", "--json", str(out))
    try:
        _read_until(proc, "has been blocked for", timeout=20)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        elapsed = time.monotonic() - signalled
    finally:
        stderr = stop_and_read(proc)
    assert elapsed < 1 + 1 + 3, f"exited {elapsed:.1f} s after SIGINT with a 1 s stop timeout"
    assert "Traceback" not in stderr and code == 1, stderr
    report = json.loads(out.read_text())
    assert report["stop_reason"].startswith("forced: the event loop stayed blocked"), report["stop_reason"]


def test_a_worker_whose_loop_is_blocked_ends_on_a_second_signal(fleet: Fleet, tmp_path: Path, target: str) -> None:
    """A worker cannot send a thing while its loop is blocked; its monitor thread still says so and still
    obeys a second Ctrl-C, and the master carries on without it."""
    from fleet import free_port

    script = write(tmp_path, "blocker_script.py", BLOCKS_FOR_40_S)
    port = free_port()
    master = fleet.master(script, target, "-u", "2", "-r", "20", "-t", "30s", "--heartbeat-timeout", "3",
                          port=port)
    worker = fleet.worker(port)
    worker.wait_for(r"has been blocked for", timeout=20)
    worker.signal(signal.SIGINT)
    time.sleep(0.5)
    assert worker.poll() is None  # the first one waits for the users to stop
    signalled = time.monotonic()
    worker.signal(signal.SIGINT)
    assert worker.wait(10) == 130
    assert time.monotonic() - signalled < 5
    assert "a second signal while the event loop was blocked" in worker.stderr()
    assert "blocker_script.py:" in worker.stderr()
    master.wait_for(r"lost", timeout=15)  # the master notices and carries on
    master.signal(signal.SIGTERM)
    master.wait(20)
