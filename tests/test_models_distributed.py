"""Load models across a fleet, counted at the target: closed-model pacing over 5 workers, the open model's
rate split, load shapes, and merged percentiles against every raw sample."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from fleet import Fleet, free_port
from servers import access_log_times, per_second, start_target, stop_process


@pytest.fixture
def logged_target(tmp_path: Path):
    log = tmp_path / "access.log"
    proc, url = start_target(access_log=log)
    yield url, log
    stop_process(proc)






def write(directory: Path, source: str) -> Path:
    path = directory / "script.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_1200_paced_users_over_five_workers_deliver_1200_per_second(fleet: Fleet, tmp_path: Path,
                                                                      logged_target) -> None:
    url, log = logged_target
    script = write(tmp_path, """
        from loadgen import HttpUser, task, constant_throughput

        class Paced(HttpUser):
            wait_time = constant_throughput(1)

            @task
            def index(self):
                self.client.get("/")
    """)
    port = free_port()
    master = fleet.master(script, url, "-u", "1200", "-r", "1200", "-t", "10s", port=port, expect=5)
    for _ in range(5):
        fleet.worker(port)
    assert master.wait(90) == 0, master.stderr()
    report = fleet.report()
    times = access_log_times(log)
    assert report["totals"]["requests"] == len(times)
    assert sorted(w["users"] for w in report["workers"]) == [240] * 5
    counts = per_second(times, times[0] + 3.0, 5)
    assert abs(sum(counts) - 6000) <= 60, counts  # within 1 % over the steady window
    assert all(abs(c - 1200) <= 24 for c in counts), counts  # and within 2 % in every second


def test_open_model_rate_is_split_over_workers(fleet: Fleet, tmp_path: Path, logged_target) -> None:
    url, log = logged_target
    script = write(tmp_path, """
        from loadgen import HttpUser, task

        class Visitor(HttpUser):
            @task
            def index(self):
                self.client.get("/delay/10")
    """)
    port = free_port()
    master = fleet.master(script, url, "--arrival-rate", "400", "--max-users", "90", "-t", "8s", port=port,
                          expect=3)
    for _ in range(3):
        fleet.worker(port)
    assert master.wait(90) == 0, master.stderr()
    report = fleet.report()
    times = access_log_times(log)
    counts = per_second(times, times[0] + 2.0, 4)
    assert abs(sum(counts) - 1600) <= 16, counts
    shares = sorted(w["requests"] for w in report["workers"])
    assert shares[-1] - shares[0] <= 0.05 * shares[-1], shares  # each worker carries a third
    assert all(w["users"] <= 30 for w in report["workers"])  # and a third of the pool
    assert report["totals"]["dropped"] == 0


def test_merged_percentiles_match_every_raw_sample(fleet: Fleet, tmp_path: Path, target: str) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    script = write(tmp_path, f"""
        import os
        from loadgen import HttpUser, task, between

        OUT = open(os.path.join({str(samples)!r}, f"{{os.getpid()}}.txt"), "a", buffering=1)

        class Sampler(HttpUser):
            wait_time = between(0.001, 0.01)

            @task(3)
            def fast(self):
                OUT.write(f"{{self.client.get('/').latency_us}}\\n")

            @task(1)
            def slow(self):
                OUT.write(f"{{self.client.get('/delay/15', name='slow').latency_us}}\\n")
    """)
    port = free_port()
    master = fleet.master(script, target, "-u", "30", "-r", "100", "-t", "5s", port=port, expect=3)
    for _ in range(3):
        fleet.worker(port)
    assert master.wait(90) == 0, master.stderr()
    report = fleet.report()
    values = sorted(int(line) for f in samples.iterdir() for line in f.read_text().split())
    assert len(values) == report["totals"]["requests"] > 1000
    latency = report["totals"]["latency_ms"]
    assert latency["min"] == values[0] / 1000 and latency["max"] == pytest.approx(values[-1] / 1000, abs=0.001)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
        exact = values[max(1, math.ceil(q * len(values))) - 1] / 1000
        assert abs(latency[key] - exact) <= 0.01 * exact + 0.001, (key, latency[key], exact)


def test_load_shape_class_and_function(tmp_path: Path, target: str) -> None:
    from conftest import run_loadgen

    script = write(tmp_path, """
        from loadgen import HttpUser, LoadShape, task, constant

        class Web(HttpUser):
            wait_time = constant(0.1)

            @task
            def index(self):
                self.client.get("/")

        class Steps(LoadShape):
            def tick(self):
                t = self.get_run_time()
                if t < 2:
                    return (3, 100)
                if t < 4:
                    return (9, 100)
                return None
    """)
    result = run_loadgen(["run", "-f", str(script), "-H", target, "--json", "r.json", "-q"], tmp_path)
    assert result.code == 0, result.stderr
    users = {round(p["t"]): p["users"] for p in result.report["timeline"]}
    assert users[1] == 3 and users[3] == 9
    assert 3.5 <= result.report["duration_s"] <= 5.5
    assert result.report["stop_reason"] == "load shape finished"
    func = write(tmp_path, """
        from loadgen import HttpUser, task, constant

        class Web(HttpUser):
            wait_time = constant(0.1)

            @task
            def index(self):
                self.client.get("/")

        def shape(elapsed):
            return (4, 100) if elapsed < 2 else None
    """)
    result = run_loadgen(["run", "-f", str(func), "-H", target, "--json", "r.json", "-q"], tmp_path)
    assert result.code == 0 and result.report["users"]["peak"] == 4 and result.report["duration_s"] < 4
