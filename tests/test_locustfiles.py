"""Unmodified Locust locustfiles (tests/locustfiles/*.py, written with ``from locust import ...``) run under
``loadgen run`` and over a master with two workers; each case is judged by what the built-in target saw
(its counters and its access log, in request order), the JSON report and the files the listeners wrote.

Every case gets a target of its own, so cases run side by side (four at a time) without sharing counters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet import Fleet, free_port
from servers import REPO, start_target, stop_process, target_stats

LOCUSTFILES = Path(__file__).resolve().parent / "locustfiles"
TAIL = 1500


@dataclass
class Run:
    """What one loadgen run left behind."""

    name: str
    code: int
    stdout: str
    stderr: str
    duration: float
    stats: dict[str, Any]
    access: list[tuple[str, str, str]]  # (method, request target, status) in the order the target served them
    hooks: list[str]
    report: dict[str, Any] | None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> dict[str, int]:
        return self.stats["by_path"]

    def count(self, path: str) -> int:
        return self.paths.get(path, 0)

    def endpoint(self, name: str, method: str | None = None) -> dict[str, Any]:
        assert self.report is not None, "no JSON report"
        rows = [e for e in self.report["endpoints"] if e["name"] == name and method in (None, e["method"])]
        assert rows, f"no endpoint {method or ''} {name} in {[(e['method'], e['name']) for e in self.report['endpoints']]}"
        return rows[0]

    def per_user(self, prefix: str = "/bytes/") -> dict[str, list[str]]:
        """``?u=ID`` requests grouped by user, each as the list of the path's last segment, in order."""
        users: dict[str, list[str]] = defaultdict(list)
        for _method, target, _status in self.access:
            m = re.fullmatch(re.escape(prefix) + r"(\d+)\?u=(\d+)", target)
            if m:
                users[m.group(2)].append(m.group(1))
        return dict(users)

    def describe(self) -> str:
        return f"exit {self.code}, {self.duration:.1f}s, paths {self.paths}, stderr {self.stderr[-TAIL:]!r}"


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _access(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in _read_lines(path):
        parts = line.split()
        rows.append((parts[0], parts[1], parts[2]))
    return rows


def run_locustfile(tmp: Path, name: str, script: str, *args: str, env: dict[str, str] | None = None,
                   host: bool = True, timeout: float = 60.0) -> Run:
    """``loadgen run -f tests/locustfiles/SCRIPT ARGS`` against a target of its own."""
    slug = re.sub(r"\W+", "_", name)
    access_log, hooks, report = tmp / f"{slug}.access", tmp / f"{slug}.hooks", tmp / f"{slug}.json"
    proc, url = start_target(access_log=access_log)
    try:
        full_env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", HOOKS_LOG=str(hooks),
                        **(env or {}))
        argv = [sys.executable, "-m", "loadgen", "run", "-f", str(LOCUSTFILES / script), "-q",
                "--json", str(report), *(["-H", url] if host else []), *args]
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=tmp,
                              stdin=subprocess.DEVNULL)
        duration = time.monotonic() - started
        try:
            stats = target_stats(url)
        except OSError as exc:
            raise AssertionError(f"the target at {url} is gone (exit {proc.poll()}, "
                                 f"stderr {proc.stderr.read()[-TAIL:] if proc.poll() is not None and proc.stderr else b''!r}); loadgen exit "
                                 f"{done.returncode}, stderr {done.stderr[-TAIL:]!r}") from exc
    finally:
        stop_process(proc)
    return Run(name, done.returncode, done.stdout, done.stderr, duration, stats, _access(access_log),
               _read_lines(hooks), json.loads(report.read_text()) if report.exists() else None)


Check = Callable[[Run], None]
Case = tuple[str, str, tuple[str, ...], dict[str, str], Check]


def case(name: str, script: str, *args: str, env: dict[str, str] | None = None) -> Callable[[Check], Case]:
    def wrap(check: Check) -> Case:
        return (name, script, args, env or {}, check)
    return wrap


def run_cases(tmp: Path, cases: list[Case]) -> None:
    """Run the cases four at a time; fail with every case that went wrong."""
    def one(c: Case) -> str | None:
        name, script, args, env, check = c
        try:
            run = run_locustfile(tmp, name, script, *args, env=env)
        except Exception as exc:  # noqa: BLE001 - a case that cannot even run is one more problem to report
            return f"{name}: {script} {' '.join(args)}: {type(exc).__name__}: {exc}\n{traceback.format_exc()[-1200:]}"
        try:
            check(run)
        except (AssertionError, KeyError, TypeError, IndexError, ValueError) as exc:
            return f"{name}: {script} {' '.join(args)}: {exc or 'assertion failed'} -- {run.describe()}"
        return None

    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(one, cases) if p]
    assert not problems, "\n\n".join(problems)


def is_cycle_prefix(seq: list[str], cycle: list[str]) -> bool:
    return all(item == cycle[i % len(cycle)] for i, item in enumerate(seq))


def share(run: Run, path: str, *others: str) -> float:
    counts = [run.count(path), *(run.count(o) for o in others)]
    return counts[0] / max(1, sum(counts))


USERS_3 = ("-u", "3", "-r", "30")


# ---- task sets ---------------------------------------------------------------------------------------------
@case("sequential order", "seq_taskset.py", *USERS_3, "-t", "2s")
def _seq(run: Run) -> None:
    assert run.code == 0
    users = run.per_user()
    assert len(users) == 3, users.keys()
    for uid, seq in users.items():
        assert len(seq) >= 8, (uid, seq)
        assert is_cycle_prefix(seq, ["1", "2", "3", "3"]), f"user {uid} out of order: {seq[:20]}"


@case("sequential interrupt", "seq_interrupt.py", *USERS_3, "-t", "2s")
def _seq_interrupt(run: Run) -> None:
    assert run.code == 0
    assert run.count("/bytes/3") == 0, "the task after interrupt() ran"
    assert run.count("/status/203") > 0 and run.count("/bytes/1") > 0, "control never came back to the user"
    users = run.per_user()
    assert len(users) == 3
    for uid, seq in users.items():
        for i, item in enumerate(seq):
            if item == "2":
                assert i > 0 and seq[i - 1] == "1", f"user {uid}: step two without step one: {seq}"
            if item == "1" and i + 1 < len(seq):
                assert seq[i + 1] == "2", f"user {uid}: the sequence did not restart from step one: {seq}"


@case("nested task sets", "nested_taskset.py", "-u", "2", "-r", "20", "-t", "2s")
def _nested(run: Run) -> None:
    assert run.code == 0
    assert set(run.paths) == {"/bytes/7", "/status/201", "/bytes/8"}
    assert abs(run.count("/bytes/7") - run.count("/status/201")) <= 2
    assert run.count("/bytes/7") >= 5


@case("inline task set weights", "inline_taskset.py", "-u", "2", "-r", "20", "-t", "2s")
def _inline(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/30", "/bytes/10"}
    assert run.count("/bytes/30") + run.count("/bytes/10") >= 100
    assert 0.62 <= share(run, "/bytes/30", "/bytes/10") <= 0.88


@case("tasks dict of functions", "tasks_dict.py", "-u", "2", "-r", "20", "-t", "2s")
def _tasks_dict(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/40", "/bytes/41"}
    assert 0.68 <= share(run, "/bytes/40", "/bytes/41") <= 0.92


@case("tasks list", "tasks_list.py", "-u", "2", "-r", "20", "-t", "2s")
def _tasks_list(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/50", "/bytes/51"}
    assert 0.5 <= share(run, "/bytes/50", "/bytes/51") <= 0.82


@case("task set on_start/on_stop", "taskset_hooks.py", *USERS_3, "-t", "2s")
def _taskset_hooks(run: Run) -> None:
    assert run.code == 0
    starts, stops, works = run.count("/status/201"), run.count("/status/202"), run.count("/bytes/5")
    assert works >= 20
    assert abs(starts - works) <= 3, (starts, works)
    assert abs(stops - works) <= 3, (stops, works)


@case("schedule_task first", "schedule_task.py", *USERS_3, "-t", "2s")
def _schedule(run: Run) -> None:
    assert run.code == 0
    users = run.per_user()
    assert len(users) == 3
    for uid, seq in users.items():
        assert len(seq) >= 10 and is_cycle_prefix(seq, ["1", "2"]), f"user {uid}: {seq[:20]}"


@case("interrupt reschedule", "interrupt_reschedule.py", "-u", "2", "-r", "20", "-t", "1500ms")
def _interrupt_reschedule(run: Run) -> None:
    assert run.code == 0
    assert run.count("/delay/101") >= 8, "interrupt(reschedule=True) should not wait"
    assert run.count("/delay/102") == 2, "interrupt(reschedule=False) should wait the 1 s wait_time"


TASKSET_CASES = [_seq, _seq_interrupt, _nested, _inline, _tasks_dict, _tasks_list, _taskset_hooks, _schedule,
                 _interrupt_reschedule]


# ---- Markov chains -----------------------------------------------------------------------------------------
@case("markov weights", "markov_weights.py", "-u", "2", "-r", "20", "-t", "3s")
def _markov_weights(run: Run) -> None:
    assert run.code == 0
    users = run.per_user()
    assert len(users) == 2
    after_hub: Counter[str] = Counter()
    for uid, seq in users.items():
        assert seq[0] == "1", f"user {uid} did not start at the first task: {seq[:5]}"
        for current, following in zip(seq, seq[1:]):
            if current == "1":
                after_hub[following] += 1
            else:
                assert following == "1", f"user {uid}: {current} went to {following}, not back to hub"
    assert sum(after_hub.values()) >= 100, after_hub
    assert set(after_hub) == {"2", "3"}, after_hub
    assert 0.62 <= after_hub["2"] / sum(after_hub.values()) <= 0.88, after_hub


@case("markov cycle", "markov_cycle.py", "-u", "2", "-r", "20", "-t", "2s")
def _markov_cycle(run: Run) -> None:
    assert run.code == 0
    users = run.per_user()
    assert len(users) == 2
    for uid, seq in users.items():
        assert len(seq) >= 20 and is_cycle_prefix(seq, ["1", "2", "3"]), f"user {uid}: {seq[:20]}"


MARKOV_CASES = [_markov_weights, _markov_cycle]


# ---- tags --------------------------------------------------------------------------------------------------
@case("tags -T", "tagged.py", *USERS_3, "-t", "2s", "-T", "checkout", "--tags", "browse")
def _tags_include(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/", "/status/201"}


@case("tags -E", "tagged.py", *USERS_3, "-t", "2s", "-E", "slow,admin")
def _tags_exclude(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/", "/bytes/1", "/bytes/60"}


@case("tag on a TaskSet", "tagged.py", *USERS_3, "-t", "2s", "-T", "reports")
def _tags_taskset(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/60"}


TAG_CASES = [_tags_include, _tags_exclude, _tags_taskset]


# ---- users, exceptions, waits --------------------------------------------------------------------------------
@case("StopUser", "stop_user.py", *USERS_3, "-t", "2s")
def _stop_user(run: Run) -> None:
    assert run.code == 0 and run.paths == {"/bytes/3": 9}


@case("RescheduleTask(Immediately)", "reschedule.py", "-u", "2", "-r", "20", "-t", "2s")
def _reschedule(run: Run) -> None:
    assert run.code == 0
    assert run.count("/bytes/11") == 5, "RescheduleTaskImmediately should skip the 10 s wait"
    assert run.count("/bytes/12") == 1, "RescheduleTask should wait the 10 s"


@case("CatchResponseError", "catch_error.py", "-u", "2", "-r", "20", "-t", "2s")
def _catch_error(run: Run) -> None:
    assert run.code == 1
    row = run.endpoint("/status/200")
    assert row["requests"] >= 10 and row["failures"] == row["requests"], row
    assert abs(run.count("/bytes/3") - run.count("/status/200")) <= 2, "the task did not go on after the with"
    assert run.endpoint("/bytes/3")["failures"] == 0
    assert any("is not what we wanted" in e["error"] for e in run.report["errors"]), run.report["errors"]


@case("success()/failure()", "catch_manual.py", "-u", "2", "-r", "20", "-t", "2s")
def _catch_manual(run: Run) -> None:
    assert run.code == 1
    ok, short = run.endpoint("missing-ok"), run.endpoint("short-body")
    assert ok["requests"] >= 10 and ok["failures"] == 0, ok
    assert short["requests"] >= 10 and short["failures"] == short["requests"], short
    assert run.count("/nope") == ok["requests"]


@case("fixed_count and weight", "fixed_weight.py", "-u", "5", "-r", "50", "-t", "2s")
def _fixed_weight(run: Run) -> None:
    assert run.code == 0
    assert (run.count("/status/201"), run.count("/status/202"), run.count("/status/203")) == (1, 3, 1)


@case("abstract user", "abstract_base.py", "-u", "2", "-r", "20", "-t", "2s")
def _abstract(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/2"}


@case("named user classes", "named_users.py", "-u", "4", "-r", "40", "-t", "2s", "Beta", "Gamma")
def _named(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/status/202", "/status/203"}


@case("wait_time method", "wait_method.py", "-u", "1", "-t", "2s")
def _wait_method(run: Run) -> None:
    assert run.code == 0 and 6 <= run.count("/bytes/1") <= 10


@case("wait time helpers", "wait_times.py", "-u", "5", "-r", "50", "-t", "3s")
def _wait_times(run: Run) -> None:
    assert run.code == 0
    assert 12 <= run.count("/delay/50") <= 17, "constant_pacing(0.2) with a 50 ms task"
    assert 25 <= run.count("/bytes/2") <= 33, "constant_throughput(10)"
    assert 9 <= run.count("/bytes/3") <= 25, "between(0.1, 0.3)"
    assert 5 <= run.count("/bytes/4") <= 7, "constant(0.5)"
    assert 30 <= run.count("/bytes/5") <= 100, "poisson(20)"


@case("User on_start/on_stop", "user_start_stop.py", *USERS_3, "-t", "2s")
def _user_hooks(run: Run) -> None:
    assert run.code == 0
    assert run.count("/status/201") == 3 and run.count("/status/204") == 3
    assert run.count("/") >= 30


@case("stop timeout lets the task finish", "stop_timeout.py", "-u", "1", "-t", "1s", "-s", "3")
def _stop_timeout(run: Run) -> None:
    assert run.code == 0
    assert run.count("/delay/1200") == 1 and run.count("/bytes/9") == 1


@case("stop timeout 0 stops at once", "stop_timeout.py", "-u", "1", "-t", "1s", "-s", "0")
def _stop_timeout_zero(run: Run) -> None:
    assert run.count("/delay/1200") == 1 and run.count("/bytes/9") == 0  # cut off: its second request never went


USER_CASES = [_stop_user, _reschedule, _catch_error, _catch_manual, _fixed_weight, _abstract, _named, _wait_method,
              _wait_times, _user_hooks, _stop_timeout, _stop_timeout_zero]


# ---- FastHttpUser and rest() ---------------------------------------------------------------------------------
@case("FastHttpUser rest()", "fasthttp_rest.py", "-u", "2", "-r", "20", "-t", "2s")
def _fast_rest(run: Run) -> None:
    assert run.code == 1
    post = run.endpoint("/echo", "POST")
    assert post["requests"] >= 5 and post["failures"] == 0, post
    assert abs(run.count("/bytes/7") - post["requests"]) <= 2, "resp.js did not hold the echoed JSON"
    plain, asserted = run.endpoint("plain-text"), run.endpoint("asserted")
    assert plain["requests"] >= 5 and plain["failures"] == plain["requests"], plain
    assert asserted["requests"] >= 5 and asserted["failures"] == asserted["requests"], asserted
    errors = " | ".join(e["error"] for e in run.report["errors"])
    assert "wrong method" in errors and "JSON" in errors, errors
    heads = [t for m, t, _ in run.access if m == "POST"]
    assert heads and all(t == "/echo" for t in heads)


@case("FastHttpUser attributes", "fasthttp_attrs.py", "-u", "2", "-r", "20", "-t", "3s")
def _fast_attrs(run: Run) -> None:
    assert run.code == 1
    slow, hops = run.endpoint("slow"), run.endpoint("hops")
    assert slow["requests"] >= 3 and slow["failures"] == slow["requests"], slow
    assert slow["latency_ms"]["max"] < 1000, "network_timeout = 0.3 did not cut the 1.5 s response"
    assert hops["requests"] >= 3 and hops["failures"] == 0, hops
    assert run.count("/redirect/2") == run.count("/redirect/1") == run.count("/") == hops["requests"]


@case("rest_()", "rest_underscore.py", "-u", "2", "-r", "20", "-t", "2s")
def _rest_underscore(run: Run) -> None:
    assert run.code == 0
    echoes = [t for _, t, _ in run.access if t.startswith("/echo")]
    assert len(echoes) >= 10 and all(re.fullmatch(r"/echo\?_=\d+", t) for t in echoes), echoes[:5]
    assert run.endpoint("/echo?_=...")["requests"] == len(echoes)
    assert abs(run.count("/bytes/8") - len(echoes)) <= 2


FAST_CASES = [_fast_rest, _fast_attrs, _rest_underscore]


# ---- events, runner, stats, options ------------------------------------------------------------------------
@case("custom client events", "custom_client.py", "-u", "2", "-r", "20", "-t", "2s")
def _custom_client(run: Run) -> None:
    assert run.code == 1, "fired requests with an exception are failures"
    fired = [line.split() for line in run.hooks if line.startswith("fired")]
    assert len(fired) >= 20 and run.hooks.count("quitting") == 1, run.hooks[-3:]
    assert run.stats["requests"] == 0
    totals = run.report["totals"]
    assert totals["requests"] == len(fired), (totals["requests"], len(fired))
    assert totals["failures"] == sum(1 for f in fired if f[2] == "fail")
    for name in ("select", "update"):
        row = run.endpoint(name, "SQL")
        assert row["requests"] == sum(1 for f in fired if f[1] == name), row
        assert row["failures"] == sum(1 for f in fired if f[1] == name and f[2] == "fail"), row
    assert any("deadlock" in e["error"] for e in run.report["errors"])


@case("request listener", "request_listener.py", "-u", "2", "-r", "20", "-t", "2s")
def _request_listener(run: Run) -> None:
    assert run.code == 1
    assert len(run.hooks) == 1, run.hooks
    requests, failures, names = run.hooks[0].split()
    assert int(requests) == run.stats["requests"] == run.report["totals"]["requests"] >= 20
    assert int(failures) == run.count("/status/500") == run.report["totals"]["failures"]
    assert names == "GET:/bytes/2,GET:/status/500"


@case("process hooks", "hooks_local.py", *USERS_3, "-t", "2s")
def _hooks_local(run: Run) -> None:
    assert run.code == 0
    events = [line.split() for line in run.hooks]
    assert [e[0] for e in events] == ["init", "test_start", "spawning_complete", "test_stopping", "test_stop",
                                      "quitting"], run.hooks
    assert {e[1] for e in events if e[0] != "spawning_complete"} == {"LocalRunner"}, run.hooks
    assert {e[2] for e in events} == {str(e[2]) for e in events[:1]}, "the hooks ran in different processes"
    assert events[2][1] == "3", "spawning_complete(user_count=3)"


@case("custom arguments", "custom_args.py", "-u", "2", "-r", "20", "-t", "2s", "--target-path", "/bytes/42",
      env={"HOOK_CODE": "203"})
def _custom_args(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/42", "/status/203"}


@case("custom argument defaults", "custom_args.py", "-u", "1", "-t", "2s")
def _custom_defaults(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/1", "/status/200"}


@case("command line beats env_var", "custom_args.py", "-u", "1", "-t", "2s", "--code", "202",
      env={"HOOK_CODE": "203"})
def _custom_cli_wins(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/1", "/status/202"}


@case("parser flags", "parser_flags.py", "-u", "2", "-r", "20", "-t", "2s", "--paths", "/bytes/31", "/bytes/32",
      "--api-key", "s3cret")
def _parser_flags(run: Run) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/31", "/bytes/32"}
    assert run.hooks == ["init s3cret h 2"]


@case("runner from a task", "runner_info.py", *USERS_3, "-t", "2s")
def _runner_info(run: Run) -> None:
    assert run.code == 0
    assert run.hooks == ["True False False 3 True"] * 3


@case("runner.quit()", "runner_quit.py", "-u", "2", "-r", "20", "-t", "4s")
def _runner_quit(run: Run) -> None:
    assert run.code == 0
    assert 20 <= run.count("/bytes/6") <= 40
    assert run.report["stop_reason"] == "runner.quit() in the script", run.report["stop_reason"]


@case("stats.total", "stats_total.py", "-u", "2", "-r", "20", "-t", "2s")
def _stats_total(run: Run) -> None:
    assert len(run.hooks) == 1, run.hooks
    requests, failures, ratio, avg, p95 = run.hooks[0].split()
    assert int(requests) == run.stats["requests"] == run.report["totals"]["requests"]
    assert int(failures) == run.count("/status/503") > 0
    assert abs(float(ratio) - int(failures) / int(requests)) < 1e-3
    assert 8 <= float(avg) <= 40, "three quarters of the requests take 20 ms"
    assert 19 <= float(p95) <= 200


@case("process_exit_code set", "exit_code_fail.py", "-u", "1", "-t", "2s")
def _exit_code_fail(run: Run) -> None:
    assert run.count("/status/500") > 5
    assert run.code == 9


@case("process_exit_code forgives", "exit_code_override.py", "-u", "1", "-t", "2s")
def _exit_code_override(run: Run) -> None:
    assert run.report["totals"]["failures"] == run.report["totals"]["requests"] > 5
    assert run.code == 0


@case("log level info to a logfile", "logging_levels.py", "-u", "1", "-t", "2s", "-L", "info", "--logfile",
      "info.log")
def _log_info(run: Run) -> None:
    assert run.code == 0
    text = (Path(run.files["dir"]) / "info.log").read_text()
    assert "locustfile-info-line" in text and "locustfile-debug-line" not in text, text[-TAIL:]
    assert "locustfile-info-line" not in run.stderr


@case("log level warning", "logging_levels.py", "-u", "1", "-t", "2s", "--loglevel", "WARNING", "--logfile",
      "warning.log")
def _log_warning(run: Run) -> None:
    assert run.code == 0
    path = Path(run.files["dir"]) / "warning.log"
    text = path.read_text() if path.exists() else ""
    assert "locustfile-info-line" not in text and "locustfile-info-line" not in run.stderr


EVENT_CASES = [_custom_client, _request_listener, _hooks_local, _custom_args, _custom_defaults, _custom_cli_wins,
               _parser_flags, _runner_info, _runner_quit, _stats_total, _exit_code_fail, _exit_code_override,
               _log_info, _log_warning]


# ---- shapes and iterations ---------------------------------------------------------------------------------
def _distinct_users(run: Run, first: int) -> int:
    return sum(1 for p in run.paths if re.fullmatch(r"/bytes/\d+", p) and int(p.split("/")[-1]) >= first)


@case("shape steps", "shape_steps.py", "-t", "8s")
def _shape_steps(run: Run) -> None:
    assert run.code == 0
    assert _distinct_users(run, 1001) == 3, "the shape peaks at 3 users"
    assert run.report["stop_reason"] == "load shape finished", "tick() returning None should end the test"


@case("shape reset_time", "shape_reset.py", "-t", "8s")
def _shape_reset(run: Run) -> None:
    assert run.code == 0
    assert _distinct_users(run, 2001) == 4, "the shape peaks at 4 users"
    assert run.report["stop_reason"] == "load shape finished", "tick() returning None should end the test"


@case("iterations", "iterations.py", *USERS_3, "-t", "4s", "-i", "17")
def _iterations(run: Run) -> None:
    assert run.code == 0
    assert run.stats["requests"] == 17 == run.report["totals"]["requests"]
    assert run.report["stop_reason"] == "iterations reached", "the test should end once 17 tasks ran"


@case("one iteration", "iterations.py", "-u", "1", "-t", "4s", "--iterations", "1")
def _one_iteration(run: Run) -> None:
    assert run.code == 0 and run.stats["requests"] == 1


SHAPE_CASES = [_shape_steps, _shape_reset, _iterations, _one_iteration]


def _with_dir(tmp: Path, cases: list[Case]) -> list[Case]:
    """Cases whose check reads files the run wrote in its working directory (``tmp``)."""
    def bind(check: Check) -> Check:
        def checked(run: Run) -> None:
            run.files["dir"] = str(tmp)
            check(run)
        return checked
    return [(n, s, a, e, bind(c)) for n, s, a, e, c in cases]


def test_task_sets(tmp_path: Path) -> None:
    run_cases(tmp_path, TASKSET_CASES)


def test_markov_and_tags(tmp_path: Path) -> None:
    run_cases(tmp_path, MARKOV_CASES + TAG_CASES)


def test_users_exceptions_and_waits(tmp_path: Path) -> None:
    run_cases(tmp_path, USER_CASES)


def test_fasthttp_and_rest(tmp_path: Path) -> None:
    run_cases(tmp_path, FAST_CASES)


def test_events_runner_and_options(tmp_path: Path) -> None:
    run_cases(tmp_path, _with_dir(tmp_path, EVENT_CASES))


def test_shapes_and_iterations(tmp_path: Path) -> None:
    run_cases(tmp_path, SHAPE_CASES)


def test_corpus_is_complete() -> None:
    """Every locustfile in the corpus is run by some case, and each imports from locust, not loadgen."""
    cases = TASKSET_CASES + MARKOV_CASES + TAG_CASES + USER_CASES + FAST_CASES + EVENT_CASES + SHAPE_CASES
    used = {c[1] for c in cases} | {script for script, *_ in FLEET_CASES}
    files = {p.name for p in LOCUSTFILES.glob("*.py")}
    assert len(files) >= 30 and files == used, files ^ used
    for name in files:
        text = (LOCUSTFILES / name).read_text()
        assert "from locust" in text and "loadgen" not in text, name


# ---- a master and two workers ------------------------------------------------------------------------------
def _hook_events(lines: list[str]) -> dict[str, list[str]]:
    """``pid -> [event runner-class ...]`` from the hooks file."""
    by_pid: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        parts = line.split()
        if parts[0] == "spawning_complete":
            by_pid[parts[2]].append(f"spawning_complete {parts[1]}")
        else:
            by_pid[parts[2]].append(f"{parts[0]} {parts[1]}")
    return dict(by_pid)


def _fleet_hooks(run: Run, master_pid: int) -> None:
    assert run.code == 0
    by_pid = _hook_events(run.hooks)
    master = by_pid.get(str(master_pid), [])
    assert "spawning_complete 4" in master, f"master {master_pid}: spawning_complete(user_count=4) missing: {master}"
    assert [e for e in master if e.split()[0] in ("init", "test_start", "test_stop", "quitting")] == \
        ["init MasterRunner", "test_start MasterRunner", "test_stop MasterRunner", "quitting MasterRunner"], \
        f"master {master_pid}: {master}"
    workers = {pid: events for pid, events in by_pid.items() if pid != str(master_pid)}
    assert len(workers) == 2, f"hooks from {len(workers)} worker processes: {by_pid}"
    spawned = [int(e.split()[1]) for events in workers.values() for e in events if e.startswith("spawning")]
    assert sum(spawned) == 4, f"the workers' spawning_complete user counts: {spawned}"
    for pid, events in workers.items():
        fired = [e for e in events if e.split()[0] in ("init", "test_start", "test_stop", "quitting")]
        assert fired == ["init WorkerRunner", "test_start WorkerRunner", "test_stop WorkerRunner",
                         "quitting WorkerRunner"], f"worker {pid}: {events}"


def _fleet_tags(run: Run, master_pid: int) -> None:
    assert run.code == 0 and set(run.paths) == {"/", "/status/201"}
    assert run.report["totals"]["requests"] == run.stats["requests"]


def _fleet_nested(run: Run, master_pid: int) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/7", "/status/201", "/bytes/8"}
    assert run.report["totals"]["requests"] == run.stats["requests"]


def _fleet_iterations(run: Run, master_pid: int) -> None:
    assert run.code == 0
    assert run.stats["requests"] == 23 == run.report["totals"]["requests"]


def _fleet_custom_args(run: Run, master_pid: int) -> None:
    assert run.code == 0 and set(run.paths) == {"/bytes/77", "/status/200"}


def _fleet_custom_client(run: Run, master_pid: int) -> None:
    fired = [line.split() for line in run.hooks if line.startswith("fired")]
    assert len(fired) >= 20
    assert run.report["totals"]["requests"] == len(fired)
    assert run.report["totals"]["failures"] == sum(1 for f in fired if f[2] == "fail")


FleetCheck = Callable[[Run, int], None]
FLEET_CASES: list[tuple[str, tuple[str, ...], FleetCheck]] = [
    ("hooks_local.py", ("-u", "4", "-r", "40", "-t", "3s"), _fleet_hooks),
    ("tagged.py", ("-u", "4", "-r", "40", "-t", "3s", "-T", "checkout,browse"), _fleet_tags),
    ("nested_taskset.py", ("-u", "4", "-r", "40", "-t", "3s"), _fleet_nested),
    ("iterations.py", ("-u", "4", "-r", "40", "-t", "4s", "-i", "23"), _fleet_iterations),
    ("custom_args.py", ("-u", "2", "-r", "20", "-t", "3s", "--target-path", "/bytes/77"), _fleet_custom_args),
    ("custom_client.py", ("-u", "2", "-r", "20", "-t", "3s"), _fleet_custom_client),
]


def test_locustfiles_on_a_master_and_two_workers(fleet: Fleet, tmp_path: Path) -> None:
    """Three fleets at a time, each with a target of its own; every problem reported at the end."""
    problems = []
    for batch in (FLEET_CASES[:3], FLEET_CASES[3:]):
        started = []
        for script, args, check in batch:
            name = script.removesuffix(".py")
            access, hooks = tmp_path / f"fleet-{name}.access", tmp_path / f"fleet-{name}.hooks"
            proc, url = start_target(access_log=access)
            port = free_port()
            fleet.env["HOOKS_LOG"] = str(hooks)
            master = fleet.master(LOCUSTFILES / script, url, *args, port=port, expect=2,
                                  json_name=f"fleet-{name}.json")
            workers = [fleet.worker(port), fleet.worker(port)]
            started.append((script, args, check, name, proc, url, master, workers, time.monotonic()))
        for script, args, check, name, proc, url, master, workers, t0 in started:
            try:
                code = master.wait(60)
                duration = time.monotonic() - t0
                for worker in workers:
                    worker.wait(20)
                stats = target_stats(url)
            except AssertionError as exc:
                problems.append(f"fleet {script}: {exc}")
                continue
            finally:
                stop_process(proc)
            report_path = tmp_path / f"fleet-{name}.json"
            run = Run(f"fleet {name}", code, master.stdout(), master.stderr(), duration, stats,
                      _access(tmp_path / f"fleet-{name}.access"), _read_lines(tmp_path / f"fleet-{name}.hooks"),
                      json.loads(report_path.read_text()) if report_path.exists() else None)
            try:
                check(run, master.pid)
            except (AssertionError, KeyError, TypeError) as exc:
                worker_err = " || ".join(w.stderr()[-600:] for w in workers)
                problems.append(f"fleet {script} {' '.join(args)}: {exc!r} -- {run.describe()} -- workers: "
                                f"{worker_err!r}")
    assert not problems, "\n\n".join(problems)
