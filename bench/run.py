"""``make bench``: every benchmark figure, as markdown tables on stdout and JSON in ``bench/results/``.

    python bench/run.py                 # full: 3 interleaved rounds x 20 s, memory, accuracy (~15 min)
    python bench/run.py --quick         # 1 round x 5 s, smaller memory and accuracy runs (~3 min)
    python bench/run.py --smoke         # 2 s, loadgen vs the lean loop over HTTP, no Locust, no k6 (the CI test)
    python bench/run.py --sections throughput --rounds 5 --duration 30
    python bench/run.py --sections throughput --base main --no-locust   # this tree against another commit

Throughput: nginx (1 worker) pinned to CPU 1, every generator pinned to CPU 0 (``taskset``), 50 users, no
wait, ``GET /`` returning 100 bytes over keep-alive, HTTP and HTTPS. The generators (loadgen, Locust
FastHttpUser, k6 with ``GOMAXPROCS=1``, the lean gevent loop) run round-robin, N rounds, so machine drift hits
them alike; the figure is the median of the runs' steady rates (first 2 s and the last second excluded) and the
comparison is a ratio. loadgen, Locust and the lean loop count their own requests; k6's are counted at nginx
(``stub_status``, sampled every 0.25 s), which is also recorded for the others as a cross-check.
Everything is bounded in time and loads only 127.0.0.x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
GOALS = {"locust": 5.0, "k6": {"http": 2.0, "https": 1.5}}
"""Per-core throughput goals: loadgen's req/s over Locust FastHttpUser's, and over k6's, per scheme."""
REPO = BENCH.parent
SCRIPTS = BENCH / "scripts"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import accuracy  # noqa: E402
import memory  # noqa: E402
from memory import Measured, bench_env, loadgen_cmd, run_all, timeline_rate  # noqa: E402
from nginx import Nginx, RequestSampler, free_port, nginx_binary, pinned, wait_accepting  # noqa: E402

TOOLS = ("loadgen", "locust", "k6", "lean")
RATIO_TO = ("locust", "k6", "lean", "base")  # loadgen/<tool> ratios, in this order
USERS = 50
BASE_DIR: Path | None = None  # --base REV: a checkout of REV whose loadgen runs as the tool "base"


def _walls_table(results: dict[str, Any]) -> list[str]:
    import walls

    return walls.walls_table(results)


def _tasksets_table(results: dict[str, Any]) -> list[str]:
    import tasksets

    return tasksets.table(results)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- targets ------------------------------------------------------------------------------------------
class BuiltinTarget:
    """``loadgen target`` on a free port: the smoke test's fallback when nginx is not installed."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return 0.0

    def __enter__(self) -> BuiltinTarget:
        self.port = free_port()
        self.proc = subprocess.Popen(pinned("1", [sys.executable, "-m", "loadgen", "target", "--host", "127.0.0.1",
                                                  "--port", str(self.port)]),
                                     env=bench_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_accepting("127.0.0.1", self.port, self.proc, timeout=15)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---- one throughput run -------------------------------------------------------------------------------
def run_once(tool: str, scheme: str, server: Any, seconds: float, tmp: Path) -> dict[str, Any]:
    url = server.https_url if scheme == "https" else server.http_url
    out = tmp / f"{tool}-{scheme}-{time.monotonic_ns()}.json"
    env, cwd = bench_env(), REPO
    if tool in ("loadgen", "base"):
        cmd = loadgen_cmd("loadgen_tight.py", url, USERS, USERS, seconds, str(out),
                          extra=("--insecure",) if scheme == "https" else ())
        if tool == "base":
            assert BASE_DIR is not None
            env, cwd = dict(os.environ, PYTHONPATH=str(BASE_DIR)), BASE_DIR  # `-m loadgen` imports the base's
    elif tool == "locust":
        from locust_env import locust_command

        cmd = locust_command(SCRIPTS / "locust_fast.py", url, USERS, USERS, seconds)
    elif tool == "k6":
        from k6_env import k6_command, k6_env

        cmd = k6_command(SCRIPTS / "k6_tight.js", url, USERS, seconds, out)  # out: k6's summary
        env = k6_env()
    else:
        cmd = pinned("0", [sys.executable, str(SCRIPTS / "lean_loop.py"), "--url", url + "/", "--users", str(USERS),
                           "--duration", f"{seconds:g}", "--json", str(out)])
    counter = RequestSampler(server) if getattr(server, "status_port", 0) else None
    if counter is not None:
        counter.sample()  # the baseline, before the generator starts
    nginx_cpu0, wall0 = server.cpu_seconds(), time.time()
    proc = Measured(cmd, env=env, cwd=cwd)
    run_all([proc], timeout=seconds + 60, tick=counter.tick if counter is not None else None)
    nginx_cpu = 100.0 * (server.cpu_seconds() - nginx_cpu0) / max(time.time() - wall0, 1e-9)
    at_target: dict[str, Any] = {}
    if counter is not None:
        counter.sample()
        at_target = counter.rates(proc.t0, seconds) if seconds >= 5 else counter.rates(proc.t0, seconds, 0.0, 0.0)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{tool} {scheme} exited {proc.returncode}: {proc.stderr()[-2000:]}")
    steady_end = seconds - 1
    if tool in ("loadgen", "base"):
        report = json.loads(out.read_text())
        requests, failures = report["totals"]["requests"], report["totals"]["failures"]
        rps = report["totals"]["rps"]
        steady = timeline_rate(report, 2.0, steady_end) if seconds >= 5 else None
    elif tool == "locust":
        from locust_env import parse_locust_json

        stats = parse_locust_json(proc.stdout())
        requests, failures, rps = stats["requests"], stats["failures"], stats["rps"]
        steady = stats["steady_rps"] if seconds >= 5 else None
    elif tool == "k6":
        from k6_env import parse_k6_summary

        if proc.returncode != 0:
            raise RuntimeError(f"k6 {scheme} exited {proc.returncode}: {proc.stderr()[-2000:]}")
        stats = parse_k6_summary(out)
        requests, failures, rps = stats["requests"], stats["failures"], stats["rps"]
        # k6 keeps no per-second counts unless told to write every sample (--out json/csv, which costs it CPU):
        # its steady rate is counted at nginx, over the same window as the others' (see RequestSampler.rates)
        steady = at_target.get("target_steady_rps") if seconds >= 5 else None
    else:
        stats = json.loads(out.read_text())
        requests, failures, rps = stats["requests"], stats["errors"], stats["rps"]
        steady = stats["steady_rps"] if seconds >= 5 else None
    cpu_window = (3.0, seconds - 1) if seconds >= 6 else (0.5, seconds)
    cpu = proc.cpu_percent(*cpu_window)
    rate = steady if steady is not None else rps
    return {
        "tool": tool, "scheme": scheme, "requests": requests, "failures": failures, "rps": rps,
        "steady_rps": steady, "rate": rate, "cpu_percent": cpu,
        # requests per second of generator CPU: robust when other load takes part of CPU 0
        "per_cpu_second": round(rate / (cpu / 100.0), 1) if cpu else None,
        "nginx_cpu_percent": round(nginx_cpu, 1),
        "peak_rss_mb": round(proc.maxrss_mb, 1), "loadavg_before": round(proc.loadavg, 2),
        "cpu_pressure_after": proc.pressure_after,
        # counted at nginx (stub_status), whatever the tool says: requests served during the run, the steady rate
        # over [load start + 2 s, load start + duration - 1 s], the load's start after the process's start
        **at_target,
        **({"k6_summary": stats} if tool == "k6" else {}),
        "command": ("GOMAXPROCS=1 " if tool == "k6" else "") + shlex.join(cmd).replace(str(REPO) + "/", ""),
    }


def run_throughput(rounds: int, seconds: float, tools: tuple[str, ...], schemes: tuple[str, ...],
                   server: Any) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-tp-") as d:
        for r in range(rounds):
            order = tools[r % len(tools):] + tools[:r % len(tools)]  # rotate: no tool always goes first
            for scheme in schemes:
                for tool in order:
                    log(f"  round {r + 1}/{rounds}: {tool:7s} {scheme:5s} {seconds:g}s ...")
                    res = run_once(tool, scheme, server, seconds, Path(d))
                    res["round"] = r + 1
                    runs.append(res)
                    log(f"    {res['rate']:,.0f} req/s, CPU {res['cpu_percent']} %, nginx {res['nginx_cpu_percent']} %")
    summary: dict[str, Any] = {}
    for scheme in schemes:
        for tool in tools:
            mine = [x for x in runs if x["tool"] == tool and x["scheme"] == scheme]
            if mine:
                summary[f"{tool}_{scheme}"] = {
                    "median_rps": round(statistics.median(x["rate"] for x in mine), 1),
                    "runs_rps": [x["rate"] for x in mine],
                    "median_cpu_percent": _median([x["cpu_percent"] for x in mine]),
                    "median_per_cpu_second": _median([x.get("per_cpu_second") for x in mine]),
                    "median_nginx_cpu_percent": _median([x["nginx_cpu_percent"] for x in mine]),
                    "median_target_rps": _median([x.get("target_steady_rps") for x in mine]),
                    "peak_rss_mb": max(x["peak_rss_mb"] for x in mine),
                    "failures": sum(x["failures"] for x in mine),
                    "command": mine[0]["command"],
                }
        for other in RATIO_TO:
            a, b = summary.get(f"loadgen_{scheme}"), summary.get(f"{other}_{scheme}")
            if a and b and b["median_rps"]:
                per_round = []
                for r in range(1, rounds + 1):
                    x = [v["rate"] for v in runs if v["round"] == r and v["scheme"] == scheme and v["tool"] == "loadgen"]
                    y = [v["rate"] for v in runs if v["round"] == r and v["scheme"] == scheme and v["tool"] == other]
                    if x and y and y[0]:
                        per_round.append(round(x[0] / y[0], 3))
                eff_a, eff_b = a["median_per_cpu_second"], b["median_per_cpu_second"]
                summary[f"ratio_loadgen_{other}_{scheme}"] = {
                    "ratio_of_medians": round(a["median_rps"] / b["median_rps"], 3), "per_round": per_round,
                    "ratio_per_cpu_second": round(eff_a / eff_b, 3) if eff_a and eff_b else None}
    pressures = [x["cpu_pressure_after"] for x in runs if x.get("cpu_pressure_after") is not None]
    return {"section": "throughput", "rounds": rounds, "seconds": seconds, "users": USERS, "runs": runs,
            "summary": summary, "cpu_pressure_range": [min(pressures), max(pressures)] if pressures else None,
            "loadavg_range": [min(x["loadavg_before"] for x in runs), max(x["loadavg_before"] for x in runs)]}


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 1) if vals else None


def throughput_table(result: dict[str, Any]) -> list[str]:
    s = result["summary"]
    lines = [f"50 users, no wait, `GET /` (100 B), {result['rounds']} interleaved round(s) x {result['seconds']:g} s; "
             "req/s = median of the runs' steady rates", "",
             "| generator | scheme | median req/s | runs | at nginx req/s | gen CPU % | req per CPU-second | nginx CPU % "
             "| peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, v in s.items():
        if key.startswith("ratio_"):
            continue
        tool, scheme = key.rsplit("_", 1)
        runs = ", ".join(f"{x:,.0f}" for x in v["runs_rps"])
        eff, tgt = v.get("median_per_cpu_second"), v.get("median_target_rps")
        lines.append(f"| {tool} | {scheme} | **{v['median_rps']:,.0f}** | {runs} | {f'{tgt:,.0f}' if tgt else '-'} "
                     f"| {v['median_cpu_percent']} | {f'{eff:,.0f}' if eff else '-'} | {v['median_nginx_cpu_percent']} "
                     f"| {v['peak_rss_mb']} |")
    if result.get("cpu_pressure_range"):
        lo, hi = result["cpu_pressure_range"]
        la, lb = result["loadavg_range"]
        lines += ["", f"Other load on the machine during these runs: CPU pressure (some avg10) {lo:g}-{hi:g} %, "
                      f"load average {la:.1f}-{lb:.1f} (quiet: ~0 % and < 2)."]
    if any(k.startswith("k6_") for k in s):
        lines += ["", "k6's req/s are counted at nginx (stub_status) over the same steady window; the others count "
                      "their own, and the *at nginx* column is the same count at the target for every tool."]
    ratios = [(k, v) for k, v in s.items() if k.startswith("ratio_")]
    if ratios:
        lines += ["", "| ratio | scheme | req/s: ratio of medians | per round | per CPU-second |", "|---|---|---|---|---|"]
        for key, v in ratios:
            _, a, b, scheme = key.split("_")
            lines.append(f"| {a}/{b} | {scheme} | **{v['ratio_of_medians']}** | {', '.join(map(str, v['per_round']))} "
                         f"| {v.get('ratio_per_cpu_second') or '-'} |")
    return lines


# ---- meta, output -------------------------------------------------------------------------------------
def meta(locust_version: str | None, k6_version: str | None = None) -> dict[str, Any]:
    def first_line(cmd: list[str]) -> str | None:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    cpu_model = None
    try:
        cpu_model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import gevent

    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "cpu_model": cpu_model, "kernel": platform.release(),
            "gevent": gevent.__version__, "nginx": first_line([nginx_binary() or "nginx", "-v"]),
            "locust": locust_version, "k6": k6_version, "taskset": shutil.which("taskset") is not None,
            "git": first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
            "loadavg_at_start": os.getloadavg()}


def master_table(res: dict[str, Any]) -> list[str]:
    """The master's CPU and correctness as the fleet grows (bench/master_load.py)."""
    rows = ["| hosts | endpoint histograms every | master CPU (% of one core) | master RSS MB | deltas on time | "
            "false losses | all counted |",
            "|---:|---:|---:|---:|---:|---:|:---|"]
    for r in res.get("curve", []):
        rows.append(f"| {r['workers']} | {r.get('histograms_every', 1)} s | {r['master_cpu_percent_of_one_core']} | "
                    f"{r['master_rss_mb']} | "
                    f"{r['on_time_fraction']} | {r['false_losses']} | {r['all_requests_counted']} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="loadgen benchmarks (see bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="1 round x 5 s, smaller memory/accuracy runs")
    parser.add_argument("--smoke", action="store_true", help="2 s loadgen vs lean over HTTP, no Locust, no k6 (CI)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds per throughput run")
    parser.add_argument("--sections", default="throughput,memory,accuracy,master,walls,tasksets")
    parser.add_argument("--no-locust", action="store_true", help="skip everything that needs Locust")
    parser.add_argument("--no-k6", action="store_true", help="leave k6 out of the throughput section")
    parser.add_argument("--out", default=str(BENCH / "results"), help="where JSON and latest.md go")
    parser.add_argument("--base", default=None, metavar="REV",
                        help="also run loadgen from git REV, interleaved (throughput): before/after a change")
    args = parser.parse_args(argv)

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    rounds = args.rounds or (1 if args.quick or args.smoke else 3)
    seconds = args.duration or (2.0 if args.smoke else 5.0 if args.quick else 20.0)
    use_locust = not (args.no_locust or args.smoke)
    use_k6 = not (args.no_k6 or args.smoke) and "throughput" in sections
    if args.smoke:
        sections = [s for s in sections if s in ("throughput", "accuracy")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    locust_version = None
    if use_locust:
        from locust_env import ensure_locust

        try:
            locust_version = ensure_locust(log)
        except (OSError, subprocess.CalledProcessError) as exc:
            log(f"Locust unavailable ({exc}); continuing without it")
            use_locust = False
    k6_version = None
    if use_k6:
        from k6_env import ensure_k6

        try:
            k6_version = ensure_k6(log)
        except (OSError, subprocess.SubprocessError) as exc:
            log(f"k6 unavailable ({exc}); continuing without it")
            use_k6 = False
    info = meta(locust_version, k6_version)
    md = [f"# loadgen benchmark ({info['date']})", "",
          f"{info['cpus']} CPU ({info['cpu_model']}), Python {info['python']}, gevent {info['gevent']}, "
          f"{info['nginx']}, Locust {info['locust'] or 'not run'}, {info['k6'] or 'k6 not run'}, git {info['git']}, "
          f"load average at start {info['loadavg_at_start'][0]:.2f}", ""]
    results: dict[str, Any] = {"meta": info}

    if "throughput" in sections:
        log("throughput")
        tools = tuple(t for t in TOOLS if (use_locust or t != "locust") and (use_k6 or t != "k6"))
        base_tmp = None
        if args.base:
            global BASE_DIR
            base_tmp = tempfile.mkdtemp(prefix="loadgen-bench-base-")
            BASE_DIR = Path(base_tmp) / "tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(BASE_DIR), args.base],
                           check=True)
            tools += ("base",)
        schemes = ("http",) if args.smoke else ("http", "https")
        have_nginx = nginx_binary() is not None
        if not have_nginx and not args.smoke:
            raise SystemExit("nginx is not installed (apt-get install -y nginx)")
        try:
            with (Nginx(status=not args.smoke) if have_nginx else BuiltinTarget()) as server:
                res = run_throughput(rounds, seconds, tools, schemes, server)
        finally:
            if base_tmp is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(BASE_DIR)], check=False)
                shutil.rmtree(base_tmp, ignore_errors=True)
        if args.base:
            res["base"] = args.base
        res["target"] = "nginx" if have_nginx else "loadgen target"
        results["throughput"] = res
        md += ["## Throughput", ""] + throughput_table(res) + [""]
        for scheme in schemes:
            for other, goal in (("locust", GOALS["locust"]), ("k6", GOALS["k6"][scheme])):
                ratio = res["summary"].get(f"ratio_loadgen_{other}_{scheme}")
                if ratio:
                    value = ratio["ratio_of_medians"]
                    verdict = "meets" if value >= goal else "is BELOW"
                    name = "Locust" if other == "locust" else "k6 (on one core, GOMAXPROCS=1)"
                    md.append(f"- {scheme.upper()}: loadgen/{name} = {value}x, which {verdict} the {goal}x goal.")
        md.append("")
    if "memory" in sections:
        log("memory")
        res = memory.run_memory(quick=args.quick, locust=use_locust, log=log, raw_dir=out / "raw" / "memory")
        results["memory"] = res
        md += ["## Memory (HTTPS, one keep-alive connection per user, constant_throughput(0.1))", ""] \
            + memory.table(res) + [""]
    if "accuracy" in sections:
        log("accuracy")
        res = accuracy.run_accuracy(quick=args.quick, smoke=args.smoke, log=log, raw_dir=out / "raw" / "accuracy")
        results["accuracy"] = res
        md += ["## Accuracy", ""] + accuracy.table(res) + [""]

    if "master" in sections:
        log("master load")
        import master_load

        sizes = [100, 500] if args.quick else [100, 500, 1000, 2000]
        curve = master_load.print_curve(sizes, 10 if args.quick else 15, 20)
        results["master"] = {"curve": curve}
        md += ["## Master load (one delta a second per host, 20 endpoints)", ""] + master_table(results["master"]) \
            + [""]

    if "walls" in sections:
        log("walls")
        import walls

        results["walls"] = walls.run_walls(list(walls.SCENARIOS), quick=args.quick, locust=use_locust, log=log)
        md += ["## The four walls (bench/walls.py)", ""] + walls.walls_table(results["walls"])

    if "tasksets" in sections:
        if use_locust:
            log("tasksets")
            import tasksets

            results["tasksets"] = tasksets.run_tasksets(2, 6.0 if args.quick else 12.0, log=log)
            md += ["## TaskSets: one locustfile, loadgen and Locust (bench/tasksets.py)", ""] \
                + tasksets.table(results["tasksets"]) + [""]
        else:
            log("tasksets: skipped (it compares loadgen with Locust, which is not run)")

    # sections not run this time: keep their last figures in latest.md, marked as such
    renderers = {"throughput": ("## Throughput", throughput_table),
                 "memory": ("## Memory (HTTPS, one keep-alive connection per user, constant_throughput(0.1))",
                            memory.table),
                 "accuracy": ("## Accuracy", accuracy.table),
                 "master": ("## Master load (one delta a second per host, 20 endpoints)", master_table),
                 "walls": ("## The four walls (bench/walls.py)", _walls_table),
                 "tasksets": ("## TaskSets: one locustfile, loadgen and Locust (bench/tasksets.py)", _tasksets_table)}
    for name, (title, render) in renderers.items():
        old = out / f"{name}.json"
        if name not in results and old.exists() and not args.smoke:
            md += [f"{title} (from an earlier run, {time.strftime('%Y-%m-%d %H:%M', time.localtime(old.stat().st_mtime))})",
                   ""] + render(json.loads(old.read_text())) + [""]
    md.append(f"_bench took {time.monotonic() - started:.0f} s; command: `python bench/run.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}`_")
    text = "\n".join(md) + "\n"
    for name, res in results.items():
        (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
