"""TaskSets: one Locust locustfile, run unmodified by Locust and by loadgen, one core each (``make bench``,
section "tasksets"; or ``python bench/tasksets.py``).

The locustfile is ``scripts/locust_tasksets.py`` (``from locust import HttpUser, TaskSet, SequentialTaskSet, ...``):
a shopper picks a browsing ``TaskSet`` (weight 3: weighted tasks, left through ``interrupt()``) or a
``SequentialTaskSet`` checkout (weight 1: four GETs in order, then ``interrupt()``), no wait. 50 users, every GET
against nginx on 127.0.0.1 (CPU 1); the generator under test on CPU 0 (``taskset``). The two tools alternate
(loadgen, Locust, loadgen, Locust, ...), ``--rounds`` runs each, for each user class (``HttpUser``: Locust's
requests-based client; ``FastHttpUser`` through ``BENCH_CLIENT=fast``: its geventhttpclient one; loadgen answers
both with its own client).

A run's rate is counted at nginx (``stub_status`` every 0.25 s, ``nginx.RequestSampler``): the steady rate over
[load start + 2 s, load start + duration - 1 s]. CPU is the generator's user+sys time from /proc over the same
window (100 % = one core); req per CPU-second = rate / CPU share, the per-core figure that holds when other work
takes part of CPU 0. The ratio is loadgen/Locust, of the medians and per round. Each tool's own request count is
checked against nginx's, and the share of checkout requests (expected ~10.8 %: 4 checkout GETs for every 3 x 11
browsing ones) shows that both ran the same task mix.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCRIPT = BENCH / "scripts" / "locust_tasksets.py"
sys.path.insert(0, str(BENCH))

from memory import Measured, bench_env, loadgen_cmd, run_all  # noqa: E402
from nginx import Nginx, RequestSampler  # noqa: E402

USERS = 50
CLIENTS = {"HttpUser": "", "FastHttpUser": "fast"}  # user class -> BENCH_CLIENT
TOOLS = ("loadgen", "locust")
CHECKOUT = ("/cart", "/checkout/")


def _checkout_share(names_counts: list[tuple[str, int]]) -> float | None:
    total = sum(n for _, n in names_counts)
    checkout = sum(n for name, n in names_counts if name.startswith(CHECKOUT))
    return round(100.0 * checkout / total, 1) if total else None


def run_once(tool: str, client: str, server: Nginx, seconds: float, tmp: Path) -> dict[str, Any]:
    """One run of the locustfile on CPU 0: nginx's steady rate, CPU over the same window, the tool's own count."""
    out = tmp / f"{tool}-{client}-{time.monotonic_ns()}.json"
    env = bench_env(BENCH_CLIENT=CLIENTS[client])
    if tool == "loadgen":
        cmd = loadgen_cmd(SCRIPT.name, server.http_url, USERS, USERS, seconds, str(out))
    else:
        from locust_env import locust_command

        cmd = locust_command(SCRIPT, server.http_url, USERS, USERS, seconds)
    counter = RequestSampler(server)
    counter.sample()  # the baseline, before the generator starts
    nginx_cpu0, wall0 = server.cpu_seconds(), time.time()
    proc = Measured(cmd, env=env)
    run_all([proc], timeout=seconds + 60, tick=counter.tick)
    nginx_cpu = 100.0 * (server.cpu_seconds() - nginx_cpu0) / max(time.time() - wall0, 1e-9)
    counter.sample()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{tool} {client} exited {proc.returncode}: {proc.stderr()[-3000:]}")
    at = counter.rates(proc.t0, seconds)
    if tool == "loadgen":
        report = json.loads(out.read_text())
        requests, failures = report["totals"]["requests"], report["totals"]["failures"]
        rows = [(e["name"], e["requests"]) for e in report["endpoints"]]
    else:
        from locust_env import parse_locust_json

        stdout = proc.stdout()
        stats = parse_locust_json(stdout)
        requests, failures = stats["requests"], stats["failures"]
        rows = [(r["name"], r["num_requests"]) for r in json.loads(stdout[stdout.find("["):stdout.rindex("]") + 1])]
    start = at["load_start_s"] or 0.0
    cpu = proc.cpu_percent(start + 2.0, start + seconds - 1.0)
    rate = at["target_steady_rps"]
    return {
        "tool": tool, "client": client, "steady_rps": rate, "cpu_percent": cpu,
        "per_cpu_second": round(rate / (cpu / 100.0), 1) if rate and cpu else None,
        "nginx_cpu_percent": round(nginx_cpu, 1), "served": at["target_requests"], "reported": requests,
        "failures": failures,
        "checkout_share_pct": _checkout_share(rows), "load_start_s": at["load_start_s"],
        "cpu_s_whole_process": round(proc.cpu_s, 2), "peak_rss_mb": round(proc.maxrss_mb, 1),
        "loadavg_before": round(proc.loadavg, 2), "cpu_pressure_after": proc.pressure_after,
        "target_per_second": at["target_per_second"],
        "command": (f"BENCH_CLIENT={CLIENTS[client]} " if CLIENTS[client] else "")
        + shlex.join(cmd).replace(str(REPO) + "/", ""),
    }


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 1) if vals else None


def run_tasksets(rounds: int = 2, seconds: float = 12.0, clients: tuple[str, ...] = tuple(CLIENTS),
                 log: Any = print) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-tasksets-") as d, Nginx(status=True) as server:
        for client in clients:
            for r in range(rounds):
                for tool in TOOLS:  # loadgen, Locust, loadgen, Locust, ...
                    log(f"  tasksets {client} round {r + 1}/{rounds}: {tool} {seconds:g}s ...")
                    res = run_once(tool, client, server, seconds, Path(d))
                    res["round"] = r + 1
                    runs.append(res)
                    log(f"    {res['steady_rps'] or 0:,.0f} req/s at nginx, CPU {res['cpu_percent']} %, "
                        f"{res['per_cpu_second'] or 0:,.0f} req per CPU-s, nginx {res['nginx_cpu_percent']} %, "
                        f"load {res['loadavg_before']}, "
                        f"pressure {res['cpu_pressure_after']}")
    summary: dict[str, Any] = {}
    for client in clients:
        for tool in TOOLS:
            mine = [x for x in runs if x["tool"] == tool and x["client"] == client]
            summary[f"{tool}_{client}"] = {
                "median_rps": _median([x["steady_rps"] for x in mine]),
                "median_cpu_percent": _median([x["cpu_percent"] for x in mine]),
                "median_per_cpu_second": _median([x["per_cpu_second"] for x in mine]),
                "command": mine[0]["command"]}
        a, b = summary[f"loadgen_{client}"], summary[f"locust_{client}"]
        per_round, per_round_cpu = [], []
        for r in range(1, rounds + 1):
            x = next(v for v in runs if v["round"] == r and v["client"] == client and v["tool"] == "loadgen")
            y = next(v for v in runs if v["round"] == r and v["client"] == client and v["tool"] == "locust")
            if x["steady_rps"] and y["steady_rps"]:
                per_round.append(round(x["steady_rps"] / y["steady_rps"], 2))
            if x["per_cpu_second"] and y["per_cpu_second"]:
                per_round_cpu.append(round(x["per_cpu_second"] / y["per_cpu_second"], 2))
        summary[f"ratio_{client}"] = {
            "ratio_of_medians": round(a["median_rps"] / b["median_rps"], 2)
            if a["median_rps"] and b["median_rps"] else None,
            "ratio_per_cpu_second": round(a["median_per_cpu_second"] / b["median_per_cpu_second"], 2)
            if a["median_per_cpu_second"] and b["median_per_cpu_second"] else None,
            "per_round": per_round, "per_round_per_cpu_second": per_round_cpu}
    pressures = [x["cpu_pressure_after"] for x in runs if x["cpu_pressure_after"] is not None]
    return {"section": "tasksets", "rounds": rounds, "seconds": seconds, "users": USERS,
            "script": str(SCRIPT.relative_to(REPO)), "runs": runs, "summary": summary,
            "cpu_pressure_range": [min(pressures), max(pressures)] if pressures else None,
            "loadavg_range": [min(x["loadavg_before"] for x in runs), max(x["loadavg_before"] for x in runs)]}


def table(res: dict[str, Any]) -> list[str]:
    lines = [f"The same TaskSet locustfile (`{res['script']}`: a weighted browsing TaskSet with an interrupt, a "
             f"SequentialTaskSet checkout), {res['users']} users, no wait, one core each, {res['rounds']} "
             f"alternating runs x {res['seconds']:g} s; req/s counted at nginx:", "",
             "| user class | tool | run | req/s at nginx | CPU % | req per CPU-second | nginx CPU % | served = reported "
             "| checkout share | load avg before | CPU pressure after |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for x in res["runs"]:
        agree = "yes" if x["served"] == x["reported"] else f"{x['served']:,} / {x['reported']:,}"
        lines.append(f"| {x['client']} | {x['tool']} | {x['round']} | {x['steady_rps'] or 0:,.0f} | "
                     f"{x['cpu_percent']} | {x['per_cpu_second'] or 0:,.0f} | {x.get('nginx_cpu_percent', '-')} | "
                     f"{agree} | "
                     f"{x['checkout_share_pct']} % | {x['loadavg_before']} | {x['cpu_pressure_after']} |")
    lines += ["", "| user class | loadgen/Locust req/s (medians) | per run | per CPU-second (medians) | per run |",
              "|---|---:|---|---:|---|"]
    for key, v in res["summary"].items():
        if key.startswith("ratio_"):
            lines.append(f"| {key[6:]} | **{v['ratio_of_medians']}** | {', '.join(map(str, v['per_round']))} | "
                         f"**{v['ratio_per_cpu_second']}** | {', '.join(map(str, v['per_round_per_cpu_second']))} |")
    if res.get("cpu_pressure_range"):
        lo, hi = res["cpu_pressure_range"]
        la, lb = res["loadavg_range"]
        lines += ["", f"Other load during these runs: CPU pressure (some avg10) {lo:g}-{hi:g} %, load average "
                      f"{la:.1f}-{lb:.1f} (quiet: ~0 % and < 2)."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tool per user class (alternating)")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per run")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="HttpUser,FastHttpUser or one of them")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    clients = tuple(c for c in args.clients.split(",") if c)
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        parser.error(f"unknown user classes {unknown}: choose from {', '.join(CLIENTS)}")
    from locust_env import ensure_locust

    ensure_locust(lambda m: print(m, file=sys.stderr))
    res = run_tasksets(args.rounds, args.duration, clients, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    print("\n".join(table(res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
