"""The command line a Locust user types, judged at the target: Locust's config files, ``-f`` with several
files or a directory, a shape's user classes, custom messages between master and workers, ``run_single_user``
through ``python -m loadgen.debug``, ``-H`` over a class's host, and Locust flags refused in one line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from fleet import Fleet, free_port
from servers import REPO, reset_target, target_stats

USER = '''
from locust import HttpUser, constant, task


class {name}(HttpUser):
    wait_time = constant(0.05)
    host = "http://127.0.0.1:1"  # -H wins

    @task
    def hit(self):
        self.client.get("/status/{status}")
'''


def _loadgen(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or REPO, stdin=subprocess.DEVNULL)


def _users(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "a.py").write_text(USER.format(name="A", status=201))
    (folder / "b.py").write_text(USER.format(name="B", status=202))
    (folder / "_shared.py").write_text("raise RuntimeError('a file starting with _ is not a locustfile')\n")
    return folder / "a.py", folder / "b.py"


def test_several_files_and_a_directory_run_every_class(tmp_path: Path, target: str) -> None:
    a, b = _users(tmp_path)
    (a.parent / "more").mkdir()
    (a.parent / "more" / "c.py").write_text(USER.format(name="C", status=203))  # a directory is read as a tree
    for given, paths in ((f"{a},{b}", {"/status/201", "/status/202"}),
                         (str(a.parent), {"/status/201", "/status/202", "/status/203"})):
        reset_target(target)
        proc = _loadgen("run", "-f", given, "-H", target, "-u", "3", "-r", "30", "-t", "2s", "-q")
        assert proc.returncode == 0, proc.stderr
        assert set(target_stats(target)["by_path"]) == paths, given


def test_a_locust_conf_gives_the_options_the_command_line_leaves(tmp_path: Path, target: str) -> None:
    a, _ = _users(tmp_path)
    (tmp_path / "locust.conf").write_text(f"# Locust's format\nlocustfile = {a}\nheadless = true\nusers = 3\n"
                                          f"spawn-rate = 30\nrun-time = 2s\nhost = {target}\niterations = 7\n")
    reset_target(target)
    proc = _loadgen("run", "-q", cwd=tmp_path)  # ./locust.conf, as Locust reads it
    assert proc.returncode == 0, proc.stderr
    assert target_stats(target)["by_path"] == {"/status/201": 7}
    (tmp_path / "other.toml").write_text(f'[tool.locust]\nlocustfile = "{a}"\nusers = 2\nrun-time = "1s"\n'
                                         f'host = "{target}"\niterations = 4\n')
    reset_target(target)
    proc = _loadgen("run", "--config", str(tmp_path / "other.toml"), "-i", "5", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert target_stats(target)["by_path"] == {"/status/201": 5}  # the command line wins


def test_unsupported_locust_options_are_one_line_errors(tmp_path: Path, target: str) -> None:
    a, _ = _users(tmp_path)
    (tmp_path / "bad.conf").write_text(f"locustfile = {a}\nweb-port = 8089\n")
    cases = [
        (("run", "-f", str(a), "-H", target, "-t", "1s", "--web-port", "8089"), "--web HOST:PORT"),
        (("run", "-f", str(a), "-H", target, "-t", "1s", "--csv-full-history"), "needs --csv PREFIX"),
        (("run", "--config", str(tmp_path / "bad.conf"), "-H", target, "-t", "1s"), "--web HOST:PORT"),
        (("run", "-f", str(a), "-H", target, "-t", "1s", "--no-such-flag"), "No such option: --no-such-flag"),
    ]
    (tmp_path / "binary.conf").write_bytes(b"users = 2\nhost = \xff\xfe\n")
    (tmp_path / "list.toml").write_text("[tool.locust]\nusers = [1, 2]\n")
    cases += [(("run", "-f", str(a), "-t", "1s", "--config", str(tmp_path / "binary.conf")), "save it as UTF-8"),
              (("run", "-f", str(a), "-t", "1s", "--config", str(tmp_path / "list.toml")), "give one value")]
    for args, needle in cases:
        proc = _loadgen(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, proc.stderr)


def test_csv_full_history_has_every_endpoint_every_second(tmp_path: Path, target: str) -> None:
    a, b = _users(tmp_path)
    reset_target(target)
    prefix = tmp_path / "run"
    proc = _loadgen("run", "-f", f"{a},{b}", "-H", target, "-u", "2", "-r", "20", "-t", "3s", "-q", "--csv",
                    str(prefix), "--csv-full-history")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "run_stats_history.csv").open()))
    seconds = {row["Timestamp"] for row in rows if row["Timestamp"]}
    assert len(seconds) >= 2
    for second in seconds:  # each second: both endpoints and the aggregate
        names = {row["Name"] for row in rows if row["Timestamp"] == second}
        assert {"/status/201", "/status/202", "Aggregated"} <= names or second == min(seconds), (second, names)
    final = rows[-1]
    assert final["Name"] == "Aggregated" and int(final["Total Request Count"]) == target_stats(target)["requests"]


SHAPE = '''
from locust import HttpUser, LoadTestShape, constant, task


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def read(self):
        self.client.get("/status/201")


class Writer(HttpUser):
    wait_time = constant(0.05)

    @task
    def write(self):
        self.client.get("/status/202")


class Phases(LoadTestShape):
    def tick(self):
        if self.get_run_time() < 1.5:
            return (2, 20, [Reader])
        if self.get_run_time() < 3:
            return (2, 20, ["Writer"])
        return None
'''


def test_a_shape_runs_only_the_classes_it_names(tmp_path: Path, target: str) -> None:
    script = tmp_path / "phases.py"
    script.write_text(SHAPE)
    reset_target(target)
    proc = _loadgen("run", "-f", str(script), "-H", target, "-q", "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    seen = target_stats(target)["by_path"]
    assert set(seen) == {"/status/201", "/status/202"}
    # 2 users at 20 tasks a second for about 1.5 s each phase: neither class ran through the other's phase
    assert 30 <= seen["/status/201"] <= 75 and 30 <= seen["/status/202"] <= 75, seen


MESSAGES = '''
import os

from locust import HttpUser, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

LOG = os.environ["MESSAGES_LOG"]


def note(*words):
    with open(LOG, "a") as handle:
        handle.write(" ".join(str(w) for w in words) + "\\n")


@events.init.add_listener
def init(environment, **kwargs):
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("from_worker", lambda environment, msg: note("master-got", msg.data["pid"]))
    if isinstance(runner, WorkerRunner):
        runner.register_message("from_master", lambda environment, msg: note("worker-got", os.getpid(), msg.data))


@events.test_start.add_listener
def start(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("from_worker", {"pid": os.getpid()})


@events.report_to_master.add_listener
def report(client_id, data):
    data["requests"] = COUNT[0]
    COUNT[0] = 0


@events.worker_report.add_listener
def worker_report(client_id, data):
    note("report", client_id, data.get("requests", 0))


COUNT = [0]


class Pinger(HttpUser):
    wait_time = constant(0.05)

    @task
    def ping(self):
        self.client.get("/status/200")
        COUNT[0] += 1


@events.test_stopping.add_listener
def stopping(environment, **kwargs):
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message("from_master", "bye")
'''


def test_custom_messages_and_worker_reports_cross_the_fleet(fleet: Fleet, tmp_path: Path, target: str) -> None:
    script = tmp_path / "messages.py"
    script.write_text(MESSAGES)
    log = tmp_path / "messages.log"
    fleet.env["MESSAGES_LOG"] = str(log)
    reset_target(target)
    port = free_port()
    master = fleet.master(script, target, "-u", "4", "-r", "40", "-t", "3s", port=port, expect=2)
    workers = [fleet.worker(port), fleet.worker(port)]
    assert master.wait(60) == 0, master.stderr()
    for worker in workers:
        worker.wait(15)
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len([w for w in lines if w[0] == "master-got"]) == 2  # one from each worker
    assert len({w[1] for w in lines if w[0] == "master-got"}) == 2
    assert len([w for w in lines if w[0] == "worker-got" and w[2] == "bye"]) == 2  # to every worker
    reported = sum(int(w[2]) for w in lines if w[0] == "report")
    assert reported == target_stats(target)["requests"] == fleet.report()["totals"]["requests"]


DEBUG = '''
from locust import HttpUser, run_single_user, task
from locust.exception import StopUser


class Stepper(HttpUser):
    host = "{host}"
    done = 0

    @task
    def step(self):
        self.client.get("/status/203")
        Stepper.done += 1
        if Stepper.done == 4:
            raise StopUser()


if __name__ == "__main__":
    run_single_user(Stepper, include_time=True)
'''


def test_run_single_user_runs_one_user_and_prints_each_request(tmp_path: Path, target: str) -> None:
    script = tmp_path / "stepper.py"
    script.write_text(DEBUG.format(host=target))
    reset_target(target)
    proc = subprocess.run([sys.executable, "-m", "loadgen.debug", str(script)], capture_output=True, text=True,
                          timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert target_stats(target)["by_path"] == {"/status/203": 4}
    assert proc.stdout.count("/status/203") == 4 and " ms" in proc.stdout


CONTEXT = '''
from locust import HttpUser, constant, events, task

SEEN = []


@events.request.add_listener
def seen(request_type, name, context, exception, **kwargs):
    own_wins = (name == "/status/201") == (context.get("tenant") == "beta")  # the request's context= wins
    SEEN.append((name, context.get("tenant"), exception is None and own_wins))


@events.test_stop.add_listener
def report(environment, **kwargs):
    print("SEEN", len(SEEN), sorted({tenant for _, tenant, _ in SEEN}), all(ok for *_, ok in SEEN), flush=True)


class Tenant(HttpUser):
    wait_time = constant(0.05)

    def context(self):
        return {"tenant": "acme"}

    @task
    def hit(self):
        self.client.get("/status/200")

    @task
    def own(self):
        self.client.get("/status/201", context={"tenant": "beta"})
'''


def test_a_users_context_reaches_the_request_listeners(tmp_path: Path, target: str) -> None:
    script = tmp_path / "tenant.py"
    script.write_text(CONTEXT)
    reset_target(target)
    proc = _loadgen("run", "-f", str(script), "-H", target, "-u", "2", "-r", "20", "-t", "2s", "-q")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("SEEN"))
    assert line == f"SEEN {target_stats(target)['requests']} ['acme', 'beta'] True", line


def test_custom_messages_reach_the_processes_of_one_machine(tmp_path: Path, target: str) -> None:
    script = tmp_path / "messages.py"
    script.write_text(MESSAGES)
    log = tmp_path / "messages.log"
    reset_target(target)
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "--processes", "2", "-f", str(script), "-H",
                           target, "-u", "4", "-r", "40", "-t", "3s", "-q", "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=90, cwd=REPO, stdin=subprocess.DEVNULL,
                          env={**os.environ, "MESSAGES_LOG": str(log)})
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len({w[1] for w in lines if w[0] == "master-got"}) == 2  # each process of the machine
    assert len({w[1] for w in lines if w[0] == "worker-got" and w[2] == "bye"}) == 2
    reported = sum(int(w[2]) for w in lines if w[0] == "report")
    assert reported == target_stats(target)["requests"]


RESPONSES = '''
from locust import HttpUser, constant, events, task

SEEN = []


@events.request.add_listener
def log_request(request_type, name, response_time, response_length, response, context, exception, start_time,
                url, **kwargs):
    SEEN.append((name, response.status_code, url.endswith(name), len(response.text) == response_length))


@events.request.add_listener
def broken(response, **kwargs):
    raise RuntimeError("a listener that fails on every request")


@events.test_stop.add_listener
def report(environment, **kwargs):
    print("SEEN", len(SEEN), sorted(set(SEEN)), flush=True)


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def plain(self):
        self.client.get("/bytes/7")

    @task
    def checked(self):
        with self.client.get("/status/404", catch_response=True) as response:
            response.success()
'''


def test_request_listeners_get_the_response_and_a_broken_one_is_logged_once(tmp_path: Path, target: str) -> None:
    script = tmp_path / "responses.py"
    script.write_text(RESPONSES)
    reset_target(target)
    proc = _loadgen("run", "-f", str(script), "-H", target, "-u", "2", "-r", "20", "-t", "2s", "-q")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("SEEN"))
    assert line == (f"SEEN {target_stats(target)['requests']} [('/bytes/7', 200, True, True), "
                    "('/status/404', 404, True, True)]"), line
    assert proc.stderr.count("listener broken of events.request failed") == 1, proc.stderr[-2000:]


def test_an_installed_locust_is_never_imported(tmp_path: Path, target: str) -> None:
    """A Locust beside the script (as if installed) stays untouched: loadgen answers ``import locust``."""
    fake = tmp_path / "locust"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('the real Locust was imported')\n")
    (fake / "exception.py").write_text("raise RuntimeError('the real Locust was imported')\n")
    script = tmp_path / "plain.py"
    script.write_text(USER.format(name="Plain", status=204) +
                      "\n    def on_start(self):\n        from locust.exception import StopUser  # noqa: F401\n")
    reset_target(target)
    proc = _loadgen("run", "-f", str(script), "-H", target, "-u", "1", "-t", "1s", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "the real Locust" not in proc.stderr
    assert set(target_stats(target)["by_path"]) == {"/status/204"}


ONCE = '''
from locust import User, constant, events, task

CALLS = {}


@events.request.add_listener
def count(name, **kwargs):
    CALLS[name] = CALLS.get(name, 0) + 1


@events.test_stop.add_listener
def report(environment, **kwargs):
    print("CALLS", sorted(CALLS.items()), flush=True)


class Custom(User):
    wait_time = constant(0.1)

    @task
    def fire(self):
        events.request.fire(request_type="grpc", name="fired", response_time=1.5, response_length=3,
                            exception=None, context={})
        with events.request.measure("grpc", "measured"):
            pass
'''

STOPS = '''
from locust import HttpUser, constant, events, task
from locust.exception import StopUser


@events.request.add_listener
def stop_after_one(**kwargs):
    raise StopUser()


class Once(HttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/status/205")
'''


def test_each_request_reaches_a_listener_once_and_a_listener_may_stop_its_user(tmp_path: Path, target: str) -> None:
    once = tmp_path / "once.py"
    once.write_text(ONCE)
    report = tmp_path / "once.json"
    proc = _loadgen("run", "-f", str(once), "-u", "1", "-t", "2s", "-q", "--json", str(report))
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row["requests"] for row in json.loads(report.read_text())["endpoints"]}
    line = next(line for line in proc.stdout.splitlines() if line.startswith("CALLS"))
    assert line == f"CALLS {sorted(rows.items())}", (line, rows)  # one call per recorded request
    stops = tmp_path / "stops.py"
    stops.write_text(STOPS)
    reset_target(target)
    proc = _loadgen("run", "-f", str(stops), "-H", target, "-u", "2", "-r", "20", "-t", "2s", "-q")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert target_stats(target)["by_path"] == {"/status/205": 2}  # each user stopped after its first request


NESTED_WAITS = '''
from locust import HttpUser, TaskSet, constant, task


class Inner(TaskSet):  # no wait_time of its own: the user's, not Outer's
    @task
    def inner(self):
        self.client.get("/status/206")


class Outer(TaskSet):
    wait_time = constant(30)
    tasks = [Inner]


class Nested(HttpUser):
    wait_time = constant(0.05)
    tasks = [Outer]
'''


def test_a_task_set_without_a_wait_time_waits_the_users(tmp_path: Path, target: str) -> None:
    script = tmp_path / "nested.py"
    script.write_text(NESTED_WAITS)
    reset_target(target)
    proc = _loadgen("run", "-f", str(script), "-H", target, "-u", "1", "-t", "2s", "-q")
    assert proc.returncode == 0, proc.stderr
    assert target_stats(target)["by_path"]["/status/206"] >= 15  # every 0.05 s, not every 30 s


HANDLERS = '''
import gevent
from locust import HttpUser, constant, events, task
from locust.runners import MasterRunner, WorkerRunner


def slow(environment, msg):
    gevent.sleep(4)  # longer than the heartbeat timeout: it must not hold the master's link


def bad(environment, msg):
    raise ValueError("a broken handler")


@events.init.add_listener
def init(environment, **kwargs):
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("slow", slow)
        environment.runner.register_message("bad", bad, concurrent=True)


@events.test_start.add_listener
def start(environment, **kwargs):
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("slow")
        environment.runner.send_message("bad")


class Steady(HttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("/status/200")
'''


def test_slow_or_failing_message_handlers_do_not_hold_the_fleet(fleet: Fleet, tmp_path: Path, target: str) -> None:
    script = tmp_path / "handlers.py"
    script.write_text(HANDLERS)
    reset_target(target)
    port = free_port()
    master = fleet.master(script, target, "-u", "2", "-r", "20", "-t", "6s", port=port)
    worker = fleet.worker(port)
    assert master.wait(60) == 0, master.stderr()
    worker.wait(15)
    report = fleet.report()
    assert "the handler of custom message 'bad' failed" in master.stderr()
    assert "malformed" not in master.stderr()
    assert not [e for e in report.get("events", []) if e.get("kind") in ("lost", "fenced")], report.get("events")
    assert report["totals"]["requests"] == target_stats(target)["requests"]


PACED_SET = '''
from locust import HttpUser, TaskSet, constant, constant_pacing, task


class Paced(TaskSet):
    wait_time = constant_pacing(0.6)  # a task every 0.6 s, however long it takes

    @task
    def slow(self):
        self.client.get("/delay/500")


class Pacer(HttpUser):
    wait_time = constant(0)
    tasks = [Paced]
'''


def test_a_task_sets_constant_pacing_counts_the_task_in_its_interval(tmp_path: Path, target: str) -> None:
    script = tmp_path / "paced.py"
    script.write_text(PACED_SET)
    reset_target(target)
    proc = _loadgen("run", "-f", str(script), "-H", target, "-u", "1", "-t", "3s", "-q")
    assert proc.returncode == 0, proc.stderr
    # every 0.6 s: 5 in 3 s (a full 0.6 s after each 0.5 s task would make 3)
    assert 4 <= target_stats(target)["by_path"]["/delay/500"] <= 6
