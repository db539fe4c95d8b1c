"""Accuracy: does loadgen deliver the rate it was asked for, and how exact are its percentiles?

(a) closed model: 1,000 users x ``constant_throughput(1)`` for 20 s against nginx (HTTP), target 1,000 req/s;
(b) open model: ``--arrival-rate 1000`` for 20 s;
both measured over the steady window (t = 3 s .. end - 1 s) from loadgen's timeline *and* from nginx's access
log (``$msec`` per request, turned on for this section only), with the largest per-second deviation.
(c) percentile error: 1e6 lognormal samples into ``loadgen.stats.Histogram`` against the exact nearest-rank
percentiles.

    python bench/accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from memory import Measured, bench_env, full_seconds, loadgen_cmd, run_all, started_epoch  # noqa: E402
from nginx import Nginx  # noqa: E402

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def _log_seconds(path: Path, start: float, end: float) -> dict[int, int]:
    """Requests per wall-clock second from the nginx log, for whole seconds inside [start, end]."""
    counts: dict[int, int] = {}
    lo, hi = math.ceil(start), math.floor(end)
    with open(path) as f:
        for line in f:
            try:
                sec = int(float(line.split(" ", 1)[0]))
            except ValueError:
                continue
            if lo <= sec < hi:
                counts[sec] = counts.get(sec, 0) + 1
    return {s: counts.get(s, 0) for s in range(lo, hi)}


def _rate_case(name: str, server: Nginx, target: float, seconds: float, tmp: Path) -> dict[str, Any]:
    path = str(tmp / f"{name}.json")
    if name == "closed":
        cmd = loadgen_cmd("loadgen_paced.py", server.http_url, int(target), target, seconds, path)
        env = bench_env(BENCH_RATE="1")
    else:
        cmd = loadgen_cmd("loadgen_tight.py", server.http_url, 1, 1, seconds, path,
                          extra=("--arrival-rate", f"{target:g}"))
        env = bench_env()
    proc = Measured(cmd, env=env)
    run_all([proc], timeout=seconds + 60)
    if proc.returncode not in (0, 1) or not Path(path).exists():
        raise RuntimeError(f"accuracy {name}: loadgen exited {proc.returncode}: {proc.stderr()[-1500:]}")
    with open(path) as f:
        report = json.load(f)
    t0 = started_epoch(report)
    lo, hi = 3.0, seconds - 1.0
    points = [p for p in full_seconds(report) if lo < p["t"] <= hi]
    timeline = [p["requests"] for p in points]
    time.sleep(0.5)  # let nginx flush its log buffer (it writes unbuffered without `buffer=`, this is margin)
    per_sec = _log_seconds(server.log_path, t0 + lo, t0 + hi)
    log_counts = list(per_sec.values())

    def summary(counts: list[int]) -> dict[str, Any]:
        if not counts:
            return {"achieved_rps": None, "ratio": None, "max_dev_pct": None}
        mean = sum(counts) / len(counts)
        return {"achieved_rps": round(mean, 1), "ratio": round(mean / target, 4),
                "max_dev_pct": round(100 * max(abs(c - target) for c in counts) / target, 1),
                "min": min(counts), "max": max(counts), "seconds": len(counts)}

    return {
        "case": name, "target_rps": target, "duration_s": seconds, "window_s": [lo, hi],
        "timeline": summary(timeline), "nginx_log": summary(log_counts),
        "report_rps": report["totals"]["rps"], "requests": report["totals"]["requests"],
        "failures": report["totals"]["failures"], "dropped": report["totals"].get("dropped", 0),
        "missed": report["totals"].get("missed", 0), "cpu_percent": proc.cpu_percent(lo + 1, hi),
        "loadavg_before": proc.loadavg, "cpu_pressure_after": proc.pressure_after,
        "command": " ".join(cmd).replace(str(BENCH.parent) + "/", ""),
    }


def percentile_error(samples: int = 1_000_000, seed: int = 1) -> dict[str, Any]:
    """Histogram percentiles against exact nearest-rank percentiles of the same lognormal samples (µs)."""
    from loadgen.stats.histogram import Histogram, nearest_rank

    rng = random.Random(seed)
    out: dict[str, Any] = {"samples": samples, "distributions": []}
    worst = 0.0
    for sigma in (1.0, 2.0):
        values = [int(rng.lognormvariate(math.log(2000.0), sigma)) for _ in range(samples)]  # median 2 ms
        hist = Histogram()
        t = time.perf_counter()
        for v in values:
            hist.add(v)
        add_ns = (time.perf_counter() - t) / samples * 1e9
        got = hist.percentiles(QUANTILES)
        values.sort()
        rows = []
        for q, g in zip(QUANTILES, got):
            exact = values[nearest_rank(q, samples) - 1]
            err = abs(g - exact) / exact if exact else 0.0
            worst = max(worst, err)
            rows.append({"q": q, "exact_us": exact, "histogram_us": g, "rel_error_pct": round(100 * err, 3)})
        out["distributions"].append({"lognormal_sigma": sigma, "median_us": 2000, "add_ns": round(add_ns),
                                     "percentiles": rows})
    out["max_rel_error_pct"] = round(100 * worst, 3)
    return out


def run_accuracy(quick: bool = False, smoke: bool = False, log: Any = print,
                 raw_dir: Path | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"section": "accuracy", "cases": []}
    if not smoke:
        seconds = 10.0 if quick else 20.0
        with tempfile.TemporaryDirectory(prefix="loadgen-bench-acc-") as d, Nginx(access_log=True) as server:
            for name in ("closed", "open"):
                log(f"  accuracy {name}: 1000 req/s target, {seconds:.0f}s")
                tmp = raw_dir or Path(d)
                tmp.mkdir(parents=True, exist_ok=True)
                result["cases"].append(_rate_case(name, server, 1000.0, seconds, tmp))
    log("  accuracy percentiles: lognormal samples into Histogram")
    result["percentiles"] = percentile_error(100_000 if smoke else 1_000_000)
    return result


def table(result: dict[str, Any]) -> list[str]:
    lines = []
    if result["cases"]:
        lines += ["| model | target req/s | achieved (timeline) | max per-second dev | achieved (nginx log) "
                  "| max per-second dev (nginx) | failures | dropped/missed |", "|---|---|---|---|---|---|---|---|"]
        for c in result["cases"]:
            tl, ng = c["timeline"], c["nginx_log"]
            lines.append(f"| {c['case']} | {c['target_rps']:g} | {tl['achieved_rps']} ({tl['ratio']}) "
                         f"| {tl['max_dev_pct']} % | {ng['achieved_rps']} ({ng['ratio']}) | {ng['max_dev_pct']} % "
                         f"| {c['failures']} | {c['dropped']}/{c['missed']} |")
        lines.append("")
    p = result["percentiles"]
    lines += [f"Histogram, {p['samples']:,} lognormal samples (median 2 ms): max relative error "
              f"**{p['max_rel_error_pct']} %**", "",
              "| sigma | " + " | ".join(f"p{str(q * 100).rstrip('0').rstrip('.').replace('.', '')} err %"
                                       for q in QUANTILES) + " | add() ns |",
              "|---|" + "---|" * (len(QUANTILES) + 1)]
    for dist in p["distributions"]:
        lines.append(f"| {dist['lognormal_sigma']:g} | " + " | ".join(str(r["rel_error_pct"]) for r in dist["percentiles"])
                     + f" | {dist['add_ns']} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="loadgen accuracy benchmark")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    res = run_accuracy(quick=args.quick)
    print("\n".join(table(res)))
