"""The four walls as replayable scenarios (``make bench``, section "walls"; or ``python bench/walls.py``).

* ``caps``: the cost of each stats step at the endpoint and error caps, in process: a second's recording,
  the flush, the worker's encoding, the master's decoding and merge, and the live snapshot; with unique URLs
  and unique errors (everything past the cap), and with 1,000 named endpoints all hit every second.

* ``churn``: 1,200 users x ``constant_throughput(1)`` with ``keep_alive = False`` on one core (CPU 0;
  nginx on CPU 1): plain HTTP, HTTPS resumed over TLS 1.3 (the default), HTTPS with ``--tls-max 1.2``
  (resumption without a new key exchange) and full handshakes (``--no-tls-resume``); the rate nginx served,
  the generator's CPU, and its CPU per new connection.

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
CHURN_CASES = (("HTTP (TCP only)", "http", ()), ("HTTPS, TLS 1.3 resumed", "https", ()),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="caps")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    if "caps" in args.scenarios:
        print("\n".join(caps_table(caps(args.seconds))))
    if "churn" in args.scenarios:
        print("\n".join(churn_table(churn())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
