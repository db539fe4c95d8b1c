"""Master and workers as real processes on 127.0.0.1: balance, exact totals, losses, rejoin, security, fuzz.

Each test starts its own master on a free port and its own workers; the ``fleet`` fixture kills every
process it started. The built-in target is shared by the session and reset by each test.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import msgpack
import pytest
import zmq
from fleet import (
    SCRIPT,
    FakeWorker,
    Fleet,
    free_port,
    kill_pid,
    script_package,
    wait_until,
    worker_pids,
    write_script,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import reset_target, target_stats

from loadgen.fleet.protocol import (
    MESSAGES,
    PROTOCOL_VERSION,
    FrameError,
    Hello,
    Reject,
    Start,
    VersionMismatch,
    Welcome,
    decode,
    encode,
)
from loadgen.model.dispatch import class_counts
from loadgen.stats.recorder import Recorder
from loadgen.stats.wire import WireError, encode_delta, validate_delta

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def url(target: str) -> str:
    reset_target(target)
    return target


def served(url: str) -> int:
    return target_stats(url)["requests"]


def rows(report: dict) -> dict[str, dict]:
    return {row["id"]: row for row in report["workers"]}


def assert_exact(report: dict, url: str) -> None:
    """Nothing reported is lost, nothing is invented: the report's requests are the target's."""
    assert report["totals"]["requests"] == served(url)
    assert sum(row["requests"] for row in report["workers"]) == report["totals"]["requests"]


# ---- start, balance, exact totals ----------------------------------------------------------------------------
def test_three_workers_reach_the_exact_target_balanced(fleet: Fleet, url: str, tmp_path: Path) -> None:
    port = free_port()
    script = write_script(tmp_path)
    master = fleet.master(script, url, "-u", "10", "-r", "100", "-t", "4s", port=port, expect=3)
    workers = [fleet.worker(port) for _ in range(3)]
    assert master.wait(40) == 0, master.stderr()
    for worker in workers:
        assert worker.wait(10) == 0, worker.stderr()
    report = fleet.report()
    users = sorted(row["users"] for row in report["workers"])
    assert users == [3, 3, 4]
    assert {row["state"] for row in report["workers"]} == {"done"}
    assert all(row["requests"] > 0 for row in report["workers"])
    stats = target_stats(url)
    assert stats["connections"] == 10  # one keep-alive connection per user: exactly 10 users ran
    assert set(stats["by_path"]) == {"/", "/bytes/10"}
    assert_exact(report, url)
    assert report["users"]["peak"] == 10


def test_targets_are_absolute_balanced_per_class_and_follow_losses(zctx: zmq.Context, fleet: Fleet,
                                                                    tmp_path: Path) -> None:
    """Fake workers see the Target messages: per class, counts differ by at most one; spawn rates add up to
    -r; a silent worker's users go to the others at once, and come back when it talks again; a hot worker
    raises a ``cpu`` warning."""
    port = free_port()
    script = tmp_path / "classes.py"
    script.write_text(write_script(tmp_path).read_text() + "\n\nclass Admin(HttpUser):\n    weight = 2\n"
                      "    wait_time = constant(1)\n\n    @task\n    def admin(self):\n        pass\n")
    master = fleet.master(script, "http://127.0.0.1:9", "-u", "23", "-r", "40", "-t", "7s",
                          "--heartbeat-interval", "0.25", "--heartbeat-timeout", "1.5", "--insecure-no-auth",
                          "--allow-empty", port=port, expect=3)  # fake workers record nothing
    fakes = [FakeWorker(zctx, port, f"fake-{i}", cpu_percent=95.0 if i == 0 else 5.0).start() for i in range(3)]
    try:
        expected = class_counts(23, {"Browser": 1, "Buyer": 1, "Admin": 2})

        def settled() -> bool:
            return all(f.targets and sum(f.targets[-1].counts.values()) for f in fakes)

        wait_until(settled, 15, what="targets for every fake worker")
        time.sleep(0.3)
        last = [f.targets[-1] for f in fakes]
        for name, total in expected.items():
            counts = [t.counts[name] for t in last]
            assert sum(counts) == total
            assert max(counts) - min(counts) <= 1, (name, counts)
        assert sum(t.spawn_rate for t in last) == pytest.approx(40.0)
        fakes[2].silent = True  # as if killed: no heartbeat any more
        lost_at = time.monotonic()

        def redistributed() -> bool:
            return all(sum(f.targets[-1].counts.values()) in (11, 12) for f in fakes[:2])

        wait_until(redistributed, 4, what="the lost worker's users to move")
        assert time.monotonic() - lost_at < 2.5
        assert sum(sum(f.targets[-1].counts.values()) for f in fakes[:2]) == 23
        seen = len(fakes[2].targets)
        fakes[2].silent = False  # a network hiccup: it was still running the test, it is adopted again
        wait_until(lambda: len(fakes[2].targets) > seen, 4, what="the returning worker's new target")
        time.sleep(0.3)
        assert sorted(sum(f.targets[-1].counts.values()) for f in fakes) == [7, 8, 8]
        assert master.wait(30) == 0, master.stderr()
    finally:
        for fake in fakes:
            fake.close()
    report = fleet.report()
    states = {row["id"]: row["state"] for row in report["workers"]}
    assert states == {"fake-0": "done", "fake-1": "done", "fake-2": "done"}
    kinds = {w["kind"]: w["message"] for w in report["warnings"]}
    assert "fake-0" in kinds["cpu"]
    assert "fake-2" in kinds["worker"] and "lost" in kinds["worker"]



def test_a_staged_ramp_over_three_workers_only_adds_users_then_only_removes(zctx: zmq.Context, fleet: Fleet,
                                                                             tmp_path: Path) -> None:
    """Real master, fake workers: while ``--stages`` re-targets every 0.2 s, no worker is ever told to run fewer
    users of a class on the way up, or more on the way down (each would stop a user and start it elsewhere)."""
    port = free_port()
    script = tmp_path / "classes.py"
    script.write_text(write_script(tmp_path).read_text() + "\n\nclass Admin(HttpUser):\n    weight = 2\n"
                      "    wait_time = constant(1)\n\n    @task\n    def admin(self):\n        pass\n")
    master = fleet.master(script, "http://127.0.0.1:9", "--stages", "3s:41,3s:0", "-t", "7s", "--insecure-no-auth",
                          "--allow-empty", port=port, expect=3)  # fake workers record nothing
    fakes = [FakeWorker(zctx, port, f"fake-{i}").start() for i in range(3)]
    try:
        assert master.wait(40) == 0, master.stderr()
    finally:
        for fake in fakes:
            fake.close()
    for fake in fakes:
        totals = [sum(t.counts.values()) for t in fake.targets]
        peak = totals.index(max(totals))
        assert max(totals) >= 13 and len(totals) > 10, totals  # it did ramp, in many steps
        for before, after in zip(fake.targets, fake.targets[1:], strict=False):
            up = sum(after.counts.values()) >= sum(before.counts.values())
            for cls in before.counts:
                change = after.counts[cls] - before.counts[cls]
                assert (change >= 0) if up else (change <= 0), (fake.identity, cls, before.counts, after.counts)
        assert totals[peak:] == sorted(totals[peak:], reverse=True)



SLOW_IMPORT = """\
import time

_until = time.perf_counter() + 4.0
while time.perf_counter() < _until:  # a slow import: pandas on a cold volume, data loaded at import
    sum(range(1000))

from loadgen import HttpUser, constant, task


class Slow(HttpUser):
    wait_time = constant(0.1)

    @task
    def home(self):
        self.client.get("/")
"""


def test_a_script_that_takes_4_s_to_import_does_not_get_its_worker_lost(fleet: Fleet, url: str,
                                                                       tmp_path: Path) -> None:
    """The import runs beside the worker's loop: heartbeats keep flowing, so a master with a 2 s heartbeat
    timeout waits for it, and the test runs."""
    port = free_port()
    script = tmp_path / "slow_import.py"
    script.write_text(SLOW_IMPORT)
    reset_target(url)
    master = fleet.master(script, url, "-u", "2", "-r", "10", "-t", "3s", "--heartbeat-interval", "0.5",
                          "--heartbeat-timeout", "2", port=port)
    worker = fleet.worker(port)
    assert master.wait(60) == 0, master.stderr()
    assert worker.wait(15) == 0, worker.stderr()
    assert "lost" not in master.stderr(), master.stderr()
    report = fleet.report()
    assert not [w for w in report["warnings"] if w["kind"] == "worker"], report["warnings"]
    assert report["totals"]["requests"] > 0 and target_stats(url)["by_path"]["/"] == report["totals"]["requests"]


# ---- failures ----------------------------------------------------------------------------------------------
def test_killed_worker_is_lost_within_four_seconds_and_its_users_move(fleet: Fleet, url: str,
                                                                       tmp_path: Path) -> None:
    port = free_port()
    script = write_script(tmp_path)
    master = fleet.master(script, url, "-u", "9", "-r", "100", "-t", "9s", port=port, expect=3)
    workers = [fleet.worker(port) for _ in range(3)]
    master.wait_for(r"3/3 workers connected", 20)
    wait_until(lambda: served(url) > 50, 10, what="load")
    time.sleep(1.2)  # a few deltas reported
    victim_id, victim_pid = next(iter(worker_pids(master).items()))
    victim = next(w for w in workers if w.pid == victim_pid)
    victim.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    master.wait_for(rf"worker {re.escape(victim_id)} .*lost", 6)
    assert time.monotonic() - killed_at <= 4.0
    assert master.wait(30) == 0, master.stderr()
    report = fleet.report()
    by_id = rows(report)
    assert by_id[victim_id]["state"] == "lost"
    assert by_id[victim_id]["requests"] > 0  # what it had reported is kept
    survivors = [row for worker_id, row in by_id.items() if worker_id != victim_id]
    assert all(row["state"] == "done" for row in survivors)
    assert sorted(row["users"] for row in survivors) == [4, 5]  # 3 each, then 9 over two
    assert sum(row["requests"] for row in report["workers"]) == report["totals"]["requests"]
    assert report["totals"]["requests"] <= served(url)  # the victim's last second was never reported
    assert any(w["kind"] == "worker" and victim_id in w["message"] for w in report["warnings"])


def test_killed_master_stops_the_load_and_workers_join_a_new_master(fleet: Fleet, url: str,
                                                                     tmp_path: Path) -> None:
    port = free_port()
    script = write_script(tmp_path)
    first = fleet.master(script, url, "-u", "4", "-r", "100", "-t", "60s", port=port, expect=2)
    workers = [fleet.worker(port, "--master-timeout", "3") for _ in range(2)]
    first.wait_for("2/2 workers connected", 20)
    wait_until(lambda: served(url) > 50, 10, what="load")
    first.signal(signal.SIGKILL)
    first.wait(5)
    time.sleep(3 + 2)  # --master-timeout + 2 s
    before = served(url)
    time.sleep(1.5)
    assert served(url) == before, "workers still send load after losing their master"
    for worker in workers:
        assert worker.poll() is None, worker.stderr()
        worker.wait_for("no word from the master", 1)
    time.sleep(2)  # they keep trying, well past a heartbeat timeout
    reset_target(url)
    second = fleet.master(script, url, "-u", "4", "-r", "100", "-t", "3s", port=port, expect=2,
                          json_name="second.json")
    assert second.wait(40) == 0, second.stderr()
    report = fleet.report("second.json")
    assert len(report["workers"]) == 2
    assert all(row["state"] == "done" and row["requests"] > 0 for row in report["workers"])
    assert_exact(report, url)
    for worker in workers:
        assert worker.wait(10) == 0, worker.stderr()  # no --stay: a finished test ends them


def test_a_master_restarted_at_once_is_rejoined_without_waiting_for_the_timeout(fleet: Fleet, url: str,
                                                                                 tmp_path: Path) -> None:
    """A new master on the same address answers the old workers' heartbeats with its own id: they drop the
    old test and introduce themselves at once, long before --master-timeout (10 s)."""
    port = free_port()
    script = write_script(tmp_path)
    first = fleet.master(script, url, "-u", "2", "-t", "60s", port=port)
    worker = fleet.worker(port)
    first.wait_for("1/1 workers connected", 20)
    wait_until(lambda: served(url) > 10, 10, what="load")
    first.signal(signal.SIGKILL)
    first.wait(5)
    restarted = time.monotonic()
    second = fleet.master(script, url, "-u", "2", "-t", "2s", port=port, json_name="second.json")
    second.wait_for("1/1 workers connected", 8)
    assert time.monotonic() - restarted < 6
    assert second.wait(20) == 0, second.stderr()
    assert worker.wait(10) == 0
    assert "a new master answers" in worker.stderr()
    assert fleet.report("second.json")["workers"][0]["requests"] > 0


def test_late_worker_gets_its_share_and_a_leaving_worker_flushes(fleet: Fleet, url: str, tmp_path: Path) -> None:
    """A worker that joins a running test gets users; one stopped by SIGTERM flushes its last delta and its
    users go to the others; the totals stay exact."""
    port = free_port()
    script = write_script(tmp_path)
    master = fleet.master(script, url, "-u", "6", "-r", "100", "-t", "7s", port=port, expect=2)
    early = [fleet.worker(port) for _ in range(2)]
    master.wait_for("2/2 workers connected", 20)
    wait_until(lambda: served(url) > 20, 10, what="load")
    late = fleet.worker(port)
    master.wait_for(r"worker \S+ joined", 10, count=3)
    time.sleep(1.5)
    early[0].signal(signal.SIGTERM)
    assert early[0].wait(10) == 0, early[0].stderr()
    assert master.wait(30) == 0, master.stderr()
    report = fleet.report()
    by_pid = {int(worker_id.split("-")[-2]): row for worker_id, row in rows(report).items()}
    assert by_pid[late.pid]["users"] >= 2 and by_pid[late.pid]["requests"] > 0
    assert by_pid[early[0].pid]["state"] == "done" and by_pid[early[0].pid]["requests"] > 0
    assert by_pid[early[1].pid]["users"] == 3  # 3 → 2 when the late one came → 3 when the other left
    assert_exact(report, url)


def test_sigterm_to_master_mid_test_writes_the_report_and_workers_exit(fleet: Fleet, url: str,
                                                                        tmp_path: Path) -> None:
    port = free_port()
    script = write_script(tmp_path)
    # 0.0.0.0 without keys: the master warns loudly; workers still reach it on 127.0.0.1
    master = fleet.master(script, url, "-u", "4", "-r", "100", "-t", "60s", "--insecure-no-auth", port=port,
                          bind="0.0.0.0", expect=2)
    workers = [fleet.worker(port, "--insecure-no-auth") for _ in range(2)]
    master.wait_for("2/2 workers connected", 20)
    wait_until(lambda: served(url) > 50, 10, what="load")
    time.sleep(1)
    master.signal(signal.SIGTERM)
    assert master.wait(20) == 0, master.stderr()
    for worker in workers:
        assert worker.wait(10) == 0, worker.stderr()
    report = fleet.report()
    assert "SIGTERM" in report["stop_reason"]
    assert_exact(report, url)
    assert "WARNING: --insecure-no-auth: no authentication, no encryption" in master.stderr()
    assert all("WARNING: --insecure-no-auth" in worker.stderr() for worker in workers)


def test_expect_workers_timeout_is_a_one_line_error(fleet: Fleet, tmp_path: Path) -> None:
    port = free_port()
    master = fleet.master(write_script(tmp_path), "http://127.0.0.1:9", "--expect-workers-timeout", "2",
                          port=port, expect=2)
    assert master.wait(15) == 2
    errors = [line for line in master.stderr().splitlines() if line.startswith("loadgen: error:")]
    assert len(errors) == 1 and "only 0 of 2 workers connected within 2 s" in errors[0]
    assert "Traceback" not in master.stderr()


def test_stay_keeps_a_worker_for_the_next_master(fleet: Fleet, url: str, tmp_path: Path) -> None:
    port = free_port()
    script = write_script(tmp_path)
    first = fleet.master(script, url, "-u", "2", "-t", "2s", port=port, json_name="one.json")
    worker = fleet.worker(port, "--stay")
    assert first.wait(30) == 0, first.stderr()
    time.sleep(0.5)
    assert worker.poll() is None, worker.stderr()
    second = fleet.master(script, url, "-u", "2", "-t", "2s", port=port, json_name="two.json")
    assert second.wait(30) == 0, second.stderr()
    assert worker.poll() is None
    one, two = fleet.report("one.json"), fleet.report("two.json")
    assert one["workers"][0]["id"] == two["workers"][0]["id"]
    assert one["totals"]["requests"] + two["totals"]["requests"] == served(url)


# ---- script shipping, processes --------------------------------------------------------------------------------
def test_a_script_package_is_shipped_with_its_files(fleet: Fleet, url: str, tmp_path: Path) -> None:
    port = free_port()
    package = script_package(tmp_path)
    master = fleet.master(package, url, "-u", "2", "-r", "100", "-t", "3s", port=port, expect=2)
    workers = [fleet.worker(port) for _ in range(2)]
    assert master.wait(40) == 0, master.stderr()
    for worker in workers:
        assert worker.wait(10) == 0, worker.stderr()
    report = fleet.report()
    assert {e["name"] for e in report["endpoints"]} == {"/status/201", "/bytes/7"}
    assert all(row["requests"] > 0 for row in report["workers"])
    assert set(target_stats(url)["by_path"]) == {"/status/201", "/bytes/7"}
    assert_exact(report, url)


def test_processes_two_are_one_peer_with_a_row_per_process_and_a_crashed_one_is_restarted(
        fleet: Fleet, url: str, tmp_path: Path) -> None:
    """--processes 2 is one machine: one peer of the master (its hub merges the two processes' deltas), counted
    once by --expect-workers, with a report row per process. A killed process is restarted by its parent and
    gets a share again; its row says lost; the totals stay exact at the target."""
    port = free_port()
    script = write_script(tmp_path)
    master = fleet.master(script, url, "-u", "4", "-r", "100", "-t", "9s", port=port, expect=1)
    machine = fleet.worker(port, "--processes", "2")
    master.wait_for("1/1 workers connected", 20)
    assert len(re.findall(r"worker \S+ joined", master.stderr())) == 1  # the machine, not its processes
    children = {p.pid for p in machine.children()}
    assert len(children) == 2
    wait_until(lambda: served(url) > 20, 10, what="load")
    crashed = next(iter(children))
    kill_pid(crashed)
    machine.wait_for(rf"process {crashed} exited with -9; restarting", 5)
    machine.wait_for(r"silent for 3 s: its users go to the other processes", 8)
    assert master.wait(30) == 0, master.stderr()
    assert machine.wait(15) == 0, machine.stderr()
    report = fleet.report()
    by_pid = {int(worker_id.split("-")[-2]): row for worker_id, row in rows(report).items()}
    assert len(by_pid) == 3, rows(report)
    assert by_pid[crashed]["state"] == "lost"
    replacement = next(pid for pid in by_pid if pid not in children)
    assert by_pid[replacement]["requests"] > 0 and by_pid[replacement]["state"] == "done"
    assert all(row["host"] == report["workers"][0]["host"] for row in report["workers"])
    # what the crashed process measured in its last second is missing, and said so
    assert any("what it measured since its last delta is missing" in w["message"] for w in report["warnings"])
    assert 0 <= served(url) - report["totals"]["requests"] <= 60  # one process's last second, at most


def test_a_worker_of_another_protocol_version_is_refused_on_both_sides(zctx: zmq.Context, fleet: Fleet,
                                                                        tmp_path: Path) -> None:
    # worker → master: a hello with version 999 gets a Reject naming both versions
    port = free_port()
    master = fleet.master(write_script(tmp_path), "http://127.0.0.1:9", "--expect-workers-timeout", "20",
                          "--insecure-no-auth", port=port)
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.IDENTITY, b"time-traveller")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    dealer.send(msgpack.packb({"type": "hello", "version": 999, "worker_id": "time-traveller", "host": "x"}))
    assert dealer.poll(10_000), master.stderr()
    reply = decode(dealer.recv())
    assert isinstance(reply, Reject)
    assert "protocol version 999" in reply.reason and f"master's {PROTOCOL_VERSION}" in reply.reason
    master.wait_for("refused worker time-traveller: protocol version 999", 5)
    assert master.poll() is None
    # master → worker: a worker welcomed by a master of another version says so and exits 2
    router = zctx.socket(zmq.ROUTER)
    fake_port = router.bind_to_random_port("tcp://127.0.0.1")
    worker = fleet.worker(fake_port, "--insecure-no-auth")
    assert router.poll(15_000)
    identity, frame = router.recv_multipart()
    assert isinstance(decode(frame), Hello)
    router.send_multipart([identity, msgpack.packb({"type": "welcome", "version": 999})])
    assert worker.wait(10) == 2
    assert "protocol version 999" in worker.stderr()


# ---- hostile input -------------------------------------------------------------------------------------------
_ints = st.integers(-2**63, 2**64 - 1)  # what msgpack can carry
_scalars = st.one_of(st.none(), st.booleans(), _ints, st.floats(), st.text(max_size=20),
                     st.binary(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                       max_leaves=12)
_fields = sorted(({name for cls in MESSAGES.values() for name in cls.__dataclass_fields__}
                  | {"e", "x", "k", "u", "h", "b", "c", "n"}) - {"type"})
_maps = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(sorted(MESSAGES)), st.text(max_size=10), _ints)},
    optional={name: _values for name in _fields},
)


def _delta_like(test_id: str) -> st.SearchStrategy[bytes]:
    """Near-valid deltas (stats.wire's layout), so the fuzz reaches past the first check."""
    hist = st.one_of(st.lists(st.integers(-5, 3000), min_size=5, max_size=7), _values, st.none())
    entries = st.integers(0, 3).flatmap(lambda n: st.fixed_dictionaries(
        {"n": st.lists(st.sampled_from(["GET", "/", 1]), min_size=2 * n, max_size=2 * n),
         "r": st.lists(st.integers(-1, 9), min_size=n, max_size=n),
         "f": st.lists(st.integers(-1, 9), min_size=n, max_size=n),
         "b": st.lists(st.integers(-1, 9), min_size=n, max_size=n)},
        optional={"h": st.lists(hist, min_size=n, max_size=n), "ph": st.lists(st.lists(hist, max_size=5),
                                                                              min_size=n, max_size=n)}))
    delta = st.fixed_dictionaries({"e": st.one_of(entries, _values),
                                   "C": st.binary(max_size=64), "W": st.sampled_from([1, 2, 3, 4, 8]),
                                   "x": st.lists(st.lists(_scalars, max_size=5), max_size=2),
                                   "k": st.dictionaries(st.text(max_size=4), _ints, max_size=2),
                                   "u": st.integers(-1, 5), "d": st.integers(0, 2), "p": st.integers(0, 2),
                                   "cpu": st.floats(), "rss": st.floats(0, 10), "t": st.floats(0, 10)})
    return st.builds(lambda d, final: msgpack.packb({"type": "stats", "test_id": test_id, "delta": d,
                                                     "final": final}), delta, st.booleans())


def test_fuzzed_frames_never_kill_the_master(zctx: zmq.Context, fleet: Fleet, url: str, tmp_path: Path) -> None:
    port = free_port()
    # no run time to race against: the test ends when the late worker has shown it runs its share
    master = fleet.master(write_script(tmp_path), url, "-u", "4", "-r", "100", "-t", "300s",
                          "--heartbeat-interval", "0.25", "--heartbeat-timeout", "1.5", "--insecure-no-auth", port=port)
    fleet.worker(port, "--insecure-no-auth")
    master.wait_for("1/1 workers connected", 20)
    wait_until(lambda: served(url) > 20, 10, what="load")
    stranger = zctx.socket(zmq.DEALER)  # never says hello: its frames are unauthenticated
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(f"tcp://127.0.0.1:{port}")
    insider = zctx.socket(zmq.DEALER)  # says hello, gets the test, then talks nonsense
    insider.setsockopt(zmq.LINGER, 0)
    insider.setsockopt(zmq.IDENTITY, b"insider")
    insider.connect(f"tcp://127.0.0.1:{port}")
    insider.send(encode(Hello(version=PROTOCOL_VERSION, worker_id="insider", host="fuzz", session="s")))
    start = None
    while start is None:
        assert insider.poll(5000), master.stderr()
        message = decode(insider.recv())
        start = message if isinstance(message, Start) else None
    frames = st.one_of(st.binary(max_size=200).map(lambda b: [b]),
                       st.lists(st.binary(max_size=30), min_size=2, max_size=4),
                       _maps.map(lambda m: [msgpack.packb(m, use_bin_type=True)]),
                       _delta_like(start.test_id).map(lambda b: [b]))

    @settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(frames, st.booleans())
    def fuzz(parts: list[bytes], from_insider: bool) -> None:
        (insider if from_insider else stranger).send_multipart(parts)

    fuzz()
    time.sleep(0.5)
    assert master.poll() is None, master.stderr()
    insider.close(0)
    stranger.close(0)
    # after the fuzz, a real worker still joins and runs its share: its own copy of the script requests
    # paths only it uses, so the target tells when it has
    late_script = tmp_path / "late.py"
    late_script.write_text(SCRIPT.format(wait=0.05).replace('get("/")', 'get("/status/202")'))
    late = fleet.worker(port, "-f", str(late_script), "--insecure-no-auth")
    master.wait_for(rf"worker \S+-{late.pid}-\S+ joined", 10)
    wait_until(lambda: target_stats(url)["by_path"].get("/status/202", 0) > 5, 30, what="the late worker's load")
    master.signal(signal.SIGTERM)
    code = master.wait(40)
    assert code in (0, 1), master.stderr()  # 1: a fuzzed delta may have carried failures
    assert "Traceback" not in master.stderr()
    report = fleet.report()
    late_row = next(row for worker_id, row in rows(report).items() if f"-{late.pid}-" in worker_id)
    assert late_row["requests"] > 0
    protocol = [w["message"] for w in report["warnings"] if w["kind"] == "protocol"]
    assert protocol, report["warnings"]
    dropped = re.search(r"dropped (\d+) malformed or unknown frames and (\d+) frames", protocol[0])
    assert dropped and int(dropped.group(1)) > 0 and int(dropped.group(2)) > 0


# ---- the protocol in-process ---------------------------------------------------------------------------------
def test_decode_is_strict_and_a_real_delta_passes_the_check() -> None:
    hello = Hello(version=PROTOCOL_VERSION, worker_id="w", host="h")
    assert decode(encode(hello)) == hello
    with pytest.raises(VersionMismatch):
        decode(msgpack.packb({"type": "hello", "version": 999, "worker_id": "w", "host": "h"}))
    with pytest.raises(VersionMismatch):
        decode(encode(Welcome(version=PROTOCOL_VERSION + 1)))
    with pytest.raises(FrameError):  # True == 1, but a bool is not a version
        decode(msgpack.packb({"type": "hello", "version": True, "worker_id": "w", "host": "h"}))
    with pytest.raises(FrameError):
        decode(msgpack.packb({"type": "heartbeat", "cpu_percent": float("nan")}))
    for junk in (b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"type": "nope"})):
        with pytest.raises(FrameError):
            decode(junk)
    recorder = Recorder()
    for i in range(1000):
        recorder.record("GET", f"/{i % 10}", 100 + i * 37, 10, error="boom" if i % 100 == 0 else None)
    delta = msgpack.unpackb(msgpack.packb(encode_delta(recorder.flush())), raw=False)  # as the master gets it
    validate_delta(delta)
    delta["e"]["h"][0][0] = 10**18  # a first bucket far out of range: the report would compute 1 << 10**16
    with pytest.raises(WireError):
        validate_delta(delta)
