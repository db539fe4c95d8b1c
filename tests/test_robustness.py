"""In-process tests of the protections: watchdog, blocking-episode merging, measure(), self-monitoring and
start-up limits (the end-to-end runs are in test_robustness_e2e.py)."""

from __future__ import annotations

import gevent
import pytest

from loadgen.engine import environment, patching
from loadgen.engine.environment import Environment
from loadgen.engine.monitor import BlockingMonitor
from loadgen.engine.runner import Runner
from loadgen.engine.stalls import MAX_USER_REPORTS, StallWatch, Where, where_frame
from loadgen.model import options
from loadgen.model.plan import TestPlan
from loadgen.script.users import StopUser, User, UserContext, task
from loadgen.stats.recorder import Recorder


class FakeUser:
    """The runner's record of a user, as the watchdog reads it (engine.user_calls.UserRecord)."""

    def __init__(self, task: str | None = "t", started: float = 0.0, hook: str | None = None) -> None:
        self.user = self
        self.cls_name = "FakeUser"
        self.task = task
        self.hook = hook  # "on_start"/"on_stop" while one runs
        self.task_started = started
        self.greenlet = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- watchdog --------------------------------------------------------------------------------------------
def test_watchdog_reports_each_stuck_invocation_once() -> None:
    clock = Clock()
    users = [FakeUser(started=clock.now), FakeUser(task=None, started=clock.now)]
    dog = StallWatch(lambda: users, stall_timeout=30, clock=clock)
    clock.now += 29
    assert dog.check() == []
    clock.now += 2
    warnings = dog.check()
    kinds = [(w[0], w[2]) for w in warnings]
    assert kinds[0][0] == "stall" and kinds[0][1].startswith("stall:local:")
    assert "FakeUser.t has not returned for 31 s" in warnings[0][1]
    assert ("stall", "stuck") in kinds  # no request completed while the only busy user is stuck
    clock.now += 5
    assert dog.check() == []  # once per invocation
    users[0].task_started = clock.now - 40  # the same user, stuck in its next invocation
    again = dog.check()
    assert len(again) == 1 and again[0][2] != warnings[0][2]
    # a user in a hook is watched like one in a task
    users[1].hook, users[1].task_started = "on_start", clock.now - 31
    hooked = dog.check()
    assert len(hooked) == 1 and "FakeUser.on_start has not returned for 31 s" in hooked[0][1]


def test_watchdog_stuck_needs_no_progress_and_most_users() -> None:
    clock = Clock()
    stuck = FakeUser(started=clock.now)
    idle = [FakeUser(task=None) for _ in range(3)]
    dog = StallWatch(lambda: [stuck, *idle], stall_timeout=10, clock=clock)
    clock.now += 11
    # one stuck user among four, idle between tasks: that user is reported, the test is not "stuck"
    assert [w[2] for w in dog.check()] == [f"stall:local:{id(stuck)}:1000.0"]
    busy = [FakeUser(started=clock.now - 11) for _ in range(3)]
    dog2 = StallWatch(lambda: busy, stall_timeout=10, clock=clock)
    dog2.progress(5)  # requests completed just now: not stuck
    assert all(w[2] != "stuck" for w in dog2.check())
    clock.now += 10
    dog2.progress(0)
    assert any(w[2] == "stuck" for w in dog2.check())


def test_watchdog_caps_individual_reports() -> None:
    clock = Clock()
    users = [FakeUser(started=clock.now) for _ in range(MAX_USER_REPORTS + 5)]
    dog = StallWatch(lambda: users, stall_timeout=1, worker_id="w1", clock=clock)
    clock.now += 2
    warnings = dog.check("worker w1")
    keys = [w[2] for w in warnings]
    assert sum(k.startswith("stall:w1:") for k in keys) == MAX_USER_REPORTS
    assert "stall-more:w1" in keys and "stuck" in keys
    assert all("worker w1" in w[1] for w in warnings)


def _wait_here() -> None:
    gevent.sleep(30)


class Sleeper(User):
    @task
    def nap(self) -> None:
        _wait_here()


@pytest.mark.parametrize("open_model", [False, True])
def test_watchdog_finds_where_real_users_wait(open_model: bool) -> None:
    recorder = Recorder(open_model=open_model)
    runner = Runner({"Sleeper": Sleeper}, UserContext(recorder), stop_timeout=0.1)
    dog = StallWatch(runner.running, stall_timeout=0.1)
    if open_model:
        runner.set_rate(50, max_users=2)
    else:
        runner.set_users(2, spawn_rate=100)
    try:
        gevent.sleep(0.3)
        users = runner.running()
        assert len(users) == 2 and all(u.greenlet is not None for u in users)
        messages = [w[1] for w in dog.check()]
    finally:
        runner.stop(0.1)
    stalls = [m for m in messages if "has not returned" in m]
    assert len(stalls) == 2
    for message in stalls:
        assert "Sleeper.nap" in message
        assert "test_robustness.py" in message and "nap" in message and "_wait_here" in message
        assert "gevent sleep" in message
    stuck = [m for m in messages if m.startswith("the whole test is stuck")]
    assert stuck and "2 of 2 stuck users wait at test_robustness.py" in stuck[0] and "_wait_here" in stuck[0]


def test_where_keeps_script_frames_and_innermost_library_frame() -> None:
    import json
    import sys

    captured: list[Where] = []

    def hook(obj: dict) -> dict:  # called from inside the json library
        captured.append(where_frame(sys._getframe()))
        return obj

    json.loads("{}", object_hook=hook)
    place = captured[0]
    assert place.script[-1].startswith("test_robustness.py:") and place.script[-1].endswith(" hook")
    assert place.innermost == place.script[-1]
    assert place.library is None  # the script frame is innermost: no library frame after it
    assert "test_where_keeps_script_frames" in " ".join(place.script)


# ---- blocking monitor ------------------------------------------------------------------------------------
def test_blocking_events_of_one_block_are_merged_and_timed() -> None:
    monitor = BlockingMonitor(0.5)
    place = where_frame(None)
    for t in (100.0, 100.5, 101.0):  # one block, seen three times by the monitor thread
        monitor._events.append((t, 7, place))
    monitor._events.append((110.0, 7, place))  # a second block, later
    monitor._gaps.append((101.3, 1.8))  # the heartbeat: the loop stood still 1.8 s until 101.3
    episodes = monitor.drain()
    assert [round(s, 1) for s, _ in episodes] == [1.8, 0.5]
    assert monitor.drain() == []


def test_blocking_monitor_off() -> None:
    assert BlockingMonitor.enable(0) is None


# ---- measure() -------------------------------------------------------------------------------------------
class Worker(User):
    @task
    def noop(self) -> None:
        pass


def _entry(recorder: Recorder, kind: str, name: str):
    return recorder.flush().entries[(kind, name)]


def test_measure_times_success() -> None:
    recorder = Recorder()
    user = Worker(UserContext(recorder))
    with user.measure("sqs", "receive"):
        gevent.sleep(0.05)
    delta = recorder.flush()
    entry = delta.entries[("sqs", "receive")]
    assert entry.requests == 1 and entry.failures == 0
    assert 40_000 <= entry.latency.max <= 1_000_000


def test_measure_records_exceptions_normalised_and_swallows_them() -> None:
    recorder = Recorder()
    user = Worker(UserContext(recorder))
    for i in range(3):
        with user.measure("db", "query"):
            raise ValueError(f"row {i} of 1000 missing at 0x{i + 0xDEAD:x}")
    delta = recorder.flush()
    assert delta.entries[("db", "query")].failures == 3
    assert list(delta.errors.counts.items()) == [(("db", "query", "ValueError: row <n> of <n> missing at <addr>"), 3)]


def test_measure_timeout_is_a_failure_not_a_stuck_user() -> None:
    recorder = Recorder()
    user = Worker(UserContext(recorder))
    started = gevent.get_hub().loop.now()
    with user.measure("grpc", "slow", timeout=0.1):
        gevent.sleep(10)
    assert gevent.get_hub().loop.now() - started < 2
    delta = recorder.flush()
    assert delta.entries[("grpc", "slow")].failures == 1
    assert "Timeout: grpc slow took longer than <n>s" in next(iter(delta.errors.counts))[2]


def test_measure_lets_stop_user_and_outer_timeouts_through() -> None:
    recorder = Recorder()
    user = Worker(UserContext(recorder))
    with pytest.raises(StopUser):
        with user.measure("x", "stop"):
            raise StopUser()
    outer = gevent.Timeout(0.05)
    outer.start()
    try:
        with pytest.raises(gevent.Timeout):
            with user.measure("x", "inner", timeout=5):
                gevent.sleep(1)
    finally:
        outer.close()

    def hang() -> None:
        with user.measure("x", "killed"):
            gevent.sleep(100)

    greenlet = gevent.spawn(hang)
    gevent.sleep(0.01)
    greenlet.kill()  # a forced stop
    entries = recorder.flush().entries
    assert entries[("x", "stop")].requests == 1
    # cut off from outside: interrupted, neither a success nor a failure, and no latency sample
    for key in (("x", "inner"), ("x", "killed")):
        assert (entries[key].requests, entries[key].failures, entries[key].interrupted) == (0, 0, 1)
        assert entries[key].latency.count == 0


def test_measure_as_decorator() -> None:
    recorder = Recorder()
    user = Worker(UserContext(recorder))

    @user.measure("cache", "get")
    def get(key: str) -> str:
        if key == "bad":
            raise KeyError(key)
        return key.upper()

    assert get("a") == "A"
    assert get("b") == "B"
    assert get("bad") is None  # the failure is recorded, not raised
    entry = recorder.flush().entries[("cache", "get")]
    assert entry.requests == 3 and entry.failures == 1


# ---- environment: self-monitoring and limits at start ----------------------------------------------------
@pytest.fixture
def env() -> Environment:
    environment_ = Environment({"Worker": Worker}, options.TestOptions(max_blocking=0, stall_timeout=30))
    yield environment_
    environment_.close()


def test_cpu_warning_after_five_hot_seconds(env: Environment) -> None:
    warnings = []
    for _ in range(6):
        env.monitor.cpu_percent = 97.0
        warnings += env.check()
    assert [w[0] for w in warnings] == ["cpu"]
    assert "90% CPU for 5 s" in warnings[0][1]


def test_max_rss_stops_spawning(env: Environment) -> None:
    env.options.max_rss = 1
    env.monitor.rss_mb = 50.0
    warnings = env.check()
    assert [w[0] for w in warnings] == ["memory"] and env.runner.spawning_paused
    assert env.check() == []  # once


def test_port_range_warning(env: Environment, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    port_range = tmp_path / "ip_local_port_range"
    port_range.write_text("60000\t60099\n")
    monkeypatch.setattr(environment, "PORT_RANGE_PATH", str(port_range))
    warnings = [w for w in env.preflight(TestPlan(users=500)) if w[2].startswith("ports:")]
    assert len(warnings) == 1 and warnings[0][0] == "limits"
    assert "60000-60099" in warnings[0][1] and "sysctl -w net.ipv4.ip_local_port_range" in warnings[0][1]
    assert not [w for w in env.preflight(TestPlan(users=50)) if w[2].startswith("ports:")]
    env.options.pool = "shared:20"
    assert not [w for w in env.preflight(TestPlan(users=500)) if w[2].startswith("ports:")]


def test_patching_warnings(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patching, "EARLY_IMPORTS", ["ssl", "botocore"])
    monkeypatch.setattr(patching, "PATCH_WARNINGS", ["Patching more than once will result in the union"])
    warnings = [w for w in env.preflight(TestPlan(users=1)) if w[0] == "patching"]
    texts = " | ".join(w[1] for w in warnings)
    assert "imported before gevent patched: ssl, botocore" in texts
    assert "gevent: Patching more than once" in texts
    assert "gevent has not patched socket" in texts  # pytest itself runs unpatched


def test_early_imports_lists_client_libraries_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setitem(__import__("sys").modules, "botocore", object())
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        early = patching.early_imports()
    finally:
        stop.set()
        thread.join()
    assert "botocore" in early
    assert any(name.startswith("threading (") for name in early)
