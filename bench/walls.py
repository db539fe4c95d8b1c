"""The four walls as replayable scenarios (``make bench``, section "walls"; or ``python bench/walls.py``).

* ``caps``: the cost of each stats step at the endpoint and error caps, in process: a second's recording,
  the flush, the worker's encoding, the master's decoding and merge, and the live snapshot; with unique URLs
  and unique errors (everything past the cap), and with 1,000 named endpoints all hit every second.

* ``churn``: 1,200 users x ``constant_throughput(1)`` with ``keep_alive = False`` on one core (CPU 0;
  nginx on CPU 1): plain HTTP, HTTPS resumed over TLS 1.3 (the default), HTTPS with ``--tls-max 1.2``
  (resumption without a new key exchange) and full handshakes (``--no-tls-resume``); the rate nginx served,
  the generator's CPU, and its CPU per new connection.

* ``soak``: memory over a soak with unique URLs and unique errors (every request its own URL, a tenth its
  own failure message), 40 users x ``constant_throughput(50)`` = 2,000 req/s asked, loadgen and Locust
  (FastHttpUser) each on CPU 0 against nginx on CPU 1: RSS after 10 s and at the end, and the rate nginx
  served over the soak.
* ``stall``: a call that blocks the event loop for 40 s (an unpatched C sleep) under ``-t 6s``: when the
  block is first said on stderr, when the process exits, whether the report is written; loadgen and Locust.
* ``embedding``: ``loadgen.api`` streaming snapshots from a busy test (50 users, no wait, on CPU 0): how
  long after its tick each snapshot reaches the host application.

Caps figures are the worst and the median over the measured seconds, in milliseconds of one core.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STEPS = ("record", "flush", "encode", "decode+merge", "snapshot")


def _names_unique(second: int, per_second: int) -> list[tuple[str, str | None]]:
    base = second * per_second
    return [(f"/item/{base + i}", f"HTTP 500: no item {base + i:x}-{i}" if i % 10 == 0 else None)
            for i in range(per_second)]


def _names_hot(second: int, per_second: int) -> list[tuple[str, str | None]]:
    return [(f"/api/endpoint-{i % 1000}", "HTTP 503" if i % 50 == 0 else None) for i in range(per_second)]


def caps(seconds: int = 10, per_second: int = 2000) -> dict[str, Any]:
    """Per-step cost, in ms, for both shapes of traffic at the caps."""
    import msgpack

    from loadgen.stats.aggregate import Aggregate
    from loadgen.stats.recorder import Recorder
    from loadgen.stats.wire import decode_delta, encode_delta

    out: dict[str, Any] = {"seconds": seconds, "requests_per_second": per_second}
    shapes: dict[str, Callable[[int, int], list[tuple[str, str | None]]]] = {
        "unique URLs and errors": _names_unique, "1,000 hot endpoints": _names_hot}
    for label, names_of in shapes.items():
        recorder, aggregate = Recorder(), Aggregate()
        times: dict[str, list[float]] = {step: [] for step in STEPS}
        for second in range(seconds + 1):
            names = names_of(second, per_second)
            gc.collect()
            t0 = time.perf_counter()
            for i, (name, error) in enumerate(names):
                recorder.record("GET", name, 1000 + (i * 37) % 50_000, 120, error)
            t1 = time.perf_counter()
            delta = recorder.flush()
            t2 = time.perf_counter()
            frame = msgpack.packb(encode_delta(delta), use_bin_type=True)
            t3 = time.perf_counter()
            aggregate.add_delta("w", decode_delta(msgpack.unpackb(frame, raw=False, strict_map_key=False)))
            t4 = time.perf_counter()
            aggregate.tick()
            t5 = time.perf_counter()
            if second == 0:
                out.setdefault("first_second_ms", {})[label] = {
                    step: round((b - a) * 1000, 2) for step, a, b in zip(STEPS, (t0, t1, t2, t3, t4),
                                                                        (t1, t2, t3, t4, t5))}
                continue  # the first second fills the caps: once per test
            for step, a, b in zip(STEPS, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                times[step].append((b - a) * 1000)
        out[label] = {step: {"max": round(max(v), 2), "median": round(statistics.median(v), 2)}
                      for step, v in times.items()}
        out[label]["rows"] = len(aggregate.entries)
        out[label]["error_rows"] = len(aggregate.errors.counts)
    return out


def caps_table(res: dict[str, Any]) -> list[str]:
    lines = [f"Stats steps at the caps, ms of one core per second of {res['requests_per_second']:,} requests "
             f"(median / worst of {res['seconds']} s; the first second, which fills the caps, apart):", "",
             "| traffic | " + " | ".join(STEPS) + " | endpoint rows | error rows |",
             "|---|" + "---:|" * (len(STEPS) + 2)]
    for label in ("unique URLs and errors", "1,000 hot endpoints"):
        row = res[label]
        lines.append(f"| {label} | " + " | ".join(f"{row[s]['median']} / {row[s]['max']}" for s in STEPS)
                     + f" | {row['rows']} | {row['error_rows']} |")
    first = res.get("first_second_ms", {})
    for label, steps in first.items():
        lines.append(f"| {label}, first second | " + " | ".join(str(steps[s]) for s in STEPS) + " | | |")
    return lines


CHURN_SCRIPT = """
from loadgen import HttpUser, constant_throughput, task


class Churn(HttpUser):
    keep_alive = False
    wait_time = constant_throughput(1)

    @task
    def home(self):
        self.client.get("/")
"""
CHURN_CASES = (("HTTP (TCP only)", "http", ()), ("HTTPS resumed, default (offers TLS 1.3)", "https", ()),
               ("HTTPS, --tls-max 1.2 resumed", "https", ("--tls-max", "1.2")),
               ("HTTPS, full handshakes", "https", ("--no-tls-resume",)))


def churn(seconds: float = 12.0, users: int = 1200) -> dict[str, Any]:
    """Each churn case on CPU 0 against nginx on CPU 1: served rate (nginx's counter), CPU, CPU per connection."""
    import json
    import subprocess
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nginx import Nginx, pinned


    out: dict[str, Any] = {"users": users, "seconds": seconds, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp, Nginx(status=True) as server:
        script = Path(tmp) / "churn.py"
        script.write_text(CHURN_SCRIPT)
        for label, scheme, extra in CHURN_CASES:
            host = server.http_url if scheme == "http" else server.https_url
            report_path = Path(tmp) / "r.json"
            before = server.requests_served()
            cmd = pinned("0", [sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", host, "--insecure",
                               "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "-q", "--json",
                               str(report_path), "--allow-empty", *extra])
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO))
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - started
            served = server.requests_served() - before - 1  # the status request itself is counted
            report = json.loads(report_path.read_text())
            steady = [p for p in report["timeline"][3:-1]]  # after the ramp, before the stop
            rate = sum(p["requests"] for p in steady) / max(len(steady), 1)
            cpu_s = usage.ru_utime + usage.ru_stime
            opened = report["connections"]["opened"]
            out["cases"][label] = {
                "steady_rps": round(rate, 1), "served": served, "reported": report["totals"]["requests"],
                "cpu_percent": round(100 * cpu_s / wall, 1), "opened": opened,
                "cpu_us_per_connection": round(1e6 * cpu_s / max(opened, 1), 1),
                "tls_full": report["connections"]["tls_full"], "tls_resumed": report["connections"]["tls_resumed"],
                "p50_ms": report["totals"]["latency_ms"]["p50"], "missed": report["totals"]["missed"],
            }
    return out


def churn_table(res: dict[str, Any]) -> list[str]:
    lines = [f"Churn: {res['users']:,} users x constant_throughput(1), keep_alive = False, one core "
             f"({res['seconds']:g} s; the whole process's CPU, start-up included, per connection):", "",
             "| case | steady req/s | nginx served = reported | CPU % | CPU µs / connection | TLS full / resumed "
             "| p50 ms |", "|---|---:|---|---:|---:|---:|---:|"]
    for label, row in res["cases"].items():
        agree = "yes" if row["served"] == row["reported"] else f"no ({row['served']} vs {row['reported']})"
        lines.append(f"| {label} | {row['steady_rps']:,} | {agree} | {row['cpu_percent']} | "
                     f"{row['cpu_us_per_connection']:,} | {row['tls_full']:,} / {row['tls_resumed']:,} | "
                     f"{row['p50_ms']} |")
    return lines


SOAK_LOADGEN = """
import itertools
from loadgen import HttpUser, constant_throughput, task

N = itertools.count()


class Soak(HttpUser):
    wait_time = constant_throughput(50)

    @task
    def item(self):
        n = next(N)
        with self.client.get(f"/item/{n}", catch_response=True) as response:
            if n % 10 == 0:
                response.failure("no stock for item " + "".join(chr(65 + int(d)) for d in str(n)))
"""
SOAK_LOCUST = SOAK_LOADGEN.replace("from loadgen import HttpUser,", "from locust import FastHttpUser as HttpUser,")
STALL_LOADGEN = """
from gevent import monkey
from loadgen import HttpUser, constant, task

blocking_sleep = monkey.get_original("time", "sleep")


class Blocker(HttpUser):
    wait_time = constant(0.5)

    @task
    def call(self):
        self.client.get("/")
        if not getattr(Blocker, "blocked", False):
            Blocker.blocked = True
            blocking_sleep(40)
"""
STALL_LOCUST = STALL_LOADGEN.replace("from loadgen import HttpUser,", "from locust import FastHttpUser as HttpUser,")


def _rss_at(proc: Any, t: float) -> float | None:
    values = [rss for at, _, rss in proc.samples if at <= t]
    return round(values[-1], 1) if values else None


def soak(seconds: float = 60.0, locust: bool = True) -> dict[str, Any]:
    """RSS after 10 s and at the end, and nginx's served rate, for loadgen and (if installed) Locust."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from memory import Measured, bench_env, run_all
    from nginx import Nginx, pinned

    out: dict[str, Any] = {"seconds": seconds, "asked_rps": 2000, "tools": {}}
    with tempfile.TemporaryDirectory() as tmp, Nginx(status=True) as server:
        tools = [("loadgen", SOAK_LOADGEN)] + ([("locust", SOAK_LOCUST)] if locust else [])
        for tool, text in tools:
            script = Path(tmp) / f"soak_{tool}.py"
            script.write_text(text)
            if tool == "loadgen":
                cmd = [sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", server.http_url, "-u", "40",
                       "-r", "40", "-t", f"{seconds:g}s", "-q", "--json", str(Path(tmp) / "r.json")]
            else:
                from locust_env import locust_bin

                cmd = [str(locust_bin()), "-f", str(script), "--headless", "-u", "40", "-r", "40", "-t",
                       f"{seconds:g}s", "-H", server.http_url, "--loglevel", "WARNING", "--skip-log-setup",
                       "--only-summary"]
            before = server.requests_served()
            started = time.monotonic()
            proc = Measured(pinned("0", cmd), env=bench_env())
            run_all([proc], timeout=seconds + 120)
            served = server.requests_served() - before - 1
            out["tools"][tool] = {"rss_10s_mb": _rss_at(proc, 10.0), "rss_end_mb": _rss_at(proc, seconds),
                                  "peak_rss_mb": round(proc.maxrss_mb, 1),
                                  "served_rps": round(served / max(time.monotonic() - started - 1.5, 1.0), 1),
                                  "cpu_percent": proc.cpu_percent(5.0, seconds - 1)}
    return out


def soak_table(res: dict[str, Any]) -> list[str]:
    lines = [f"Soak with unique URLs and errors: 40 users x constant_throughput(50) = 2,000 req/s asked, "
             f"{res['seconds']:g} s, one core each (nginx counts what was served):", "",
             "| tool | RSS at 10 s | RSS at the end | growth | peak RSS | served req/s | CPU % |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for tool, row in res["tools"].items():
        growth = (row["rss_end_mb"] or 0) - (row["rss_10s_mb"] or 0)
        lines.append(f"| {tool} | {row['rss_10s_mb']} MB | {row['rss_end_mb']} MB | {growth:+.1f} MB | "
                     f"{row['peak_rss_mb']} MB | {row['served_rps']:,} | {row['cpu_percent']} |")
    return lines


def stall(locust: bool = True) -> dict[str, Any]:
    """A 40 s block under -t 6s: first said at, exited at (s after start), report written."""
    import subprocess
    import tempfile
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from memory import bench_env
    from nginx import Nginx

    out: dict[str, Any] = {"tools": {}}
    with tempfile.TemporaryDirectory() as tmp, Nginx(status=True) as server:
        tools = [("loadgen", STALL_LOADGEN)] + ([("locust", STALL_LOCUST)] if locust else [])
        for tool, text in tools:
            script = Path(tmp) / f"stall_{tool}.py"
            script.write_text(text)
            report = Path(tmp) / f"{tool}.json"
            if tool == "loadgen":
                cmd = [sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", server.http_url, "-u", "2",
                       "-r", "10", "-t", "6s", "--stop-timeout", "1", "-q", "--json", str(report)]
            else:
                from locust_env import locust_bin

                cmd = [str(locust_bin()), "-f", str(script), "--headless", "-u", "2", "-r", "10", "-t", "6s",
                       "--stop-timeout", "1", "-H", server.http_url, "--json-file", str(report.with_suffix("")),
                       "--skip-log-setup"]
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    env=bench_env(), cwd=tmp)
            said: list[float] = []

            def read(stream: Any = proc.stderr, said: list[float] = said, started: float = started) -> None:
                for line in stream:
                    if not said and "block" in line.lower():
                        said.append(time.monotonic() - started)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
            ended = time.monotonic() - started
            reader.join(2)
            out["tools"][tool] = {"said_after_s": round(said[0], 1) if said else None,
                                  "exited_after_s": round(ended, 1), "exit": proc.returncode,
                                  "report": report.exists() or report.with_suffix(".json").exists()}
    return out


def stall_table(res: dict[str, Any]) -> list[str]:
    lines = ["A 40 s block of the event loop (an unpatched C sleep) under -t 6s --stop-timeout 1:", "",
             "| tool | block first said on stderr | process exited | report written |", "|---|---:|---:|---|"]
    for tool, row in res["tools"].items():
        said = f"{row['said_after_s']} s" if row["said_after_s"] is not None else "never"
        lines.append(f"| {tool} | {said} | {row['exited_after_s']} s (exit {row['exit']}) | "
                     f"{'yes' if row['report'] else 'no'} |")
    return lines


EMBED_SCRIPT = """
from loadgen import HttpUser, constant, task


class Busy(HttpUser):
    wait_time = constant(0)

    @task
    def home(self):
        self.client.get("/")
"""


def embedding(seconds: float = 12.0) -> dict[str, Any]:
    """How long after its tick (``ts``) each snapshot of a busy test reaches the host application."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nginx import Nginx

    import loadgen.api

    lags: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Nginx(status=True) as server:
        script = Path(tmp) / "busy.py"
        script.write_text(EMBED_SCRIPT)
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {0})  # the test process inherits CPU 0; nginx has CPU 1
        with loadgen.api.start(script=str(script), host=server.http_url, users=50, spawn_rate=50,
                               run_time=f"{seconds:g}s") as handle:
            for snapshot in handle.stream(timeout=30):
                lags.append((time.time() - snapshot["ts"]) * 1000)
            handle.wait(30)
            rps = handle.report()["totals"]["rps"]
        os.sched_setaffinity(0, previous)
    lags = lags[1:]  # the first tick comes while users start
    ordered = sorted(lags)
    return {"snapshots": len(lags), "median_ms": round(statistics.median(lags), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "max_ms": round(max(lags), 2), "rps": rps}


def embedding_table(res: dict[str, Any]) -> list[str]:
    return ["Embedding lag: loadgen.api snapshots of a busy test (50 users, no wait, "
            f"{res['rps']:,} req/s), from the tick to the host application:", "",
            "| snapshots | median | p99 | max |", "|---:|---:|---:|---:|",
            f"| {res['snapshots']} | {res['median_ms']} ms | {res['p99_ms']} ms | {res['max_ms']} ms |"]


SCENARIOS = {"caps": (lambda quick, locust: caps(5 if quick else 10), caps_table),
             "churn": (lambda quick, locust: churn(6.0 if quick else 12.0), churn_table),
             "soak": (lambda quick, locust: soak(20.0 if quick else 60.0, locust), soak_table),
             "stall": (lambda quick, locust: stall(locust), stall_table),
             "embedding": (lambda quick, locust: embedding(6.0 if quick else 12.0), embedding_table)}


def run_walls(names: list[str], quick: bool = False, locust: bool = True, log: Any = print) -> dict[str, Any]:
    results = {}
    for name in names:
        log(f"walls: {name}")
        results[name] = SCENARIOS[name][0](quick, locust)
    return results


def walls_table(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, res in results.items():
        lines += SCENARIOS[name][1](res) + [""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--no-locust", action="store_true")
    args = parser.parse_args(argv)
    names = [name for name in args.scenarios.split(",") if name]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}: choose from {', '.join(SCENARIOS)}")
    results = run_walls(names, args.quick, not args.no_locust, log=lambda m: print(m, file=sys.stderr))
    print("\n".join(walls_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
