"""Memory: RSS per HTTPS user, spawn CPU and achieved rate; also the process sampler the other sections use.

Every user has its own keep-alive HTTPS connection and runs ``constant_throughput(0.1)`` (one request per
10 s). Figures: a 1-user baseline, 1,000 and 10,000 users in one process, and 30,000 users as 2 ``loadgen run``
processes of 15,000 (the fd hard limit is 20,000 per process here), each against its own nginx on 127.0.0.1
and 127.0.0.2. RSS is sampled from /proc every 0.5 s (the median over the steady window is "running") and the
peak is ``ru_maxrss`` from ``wait4()``. KB/user = (RSS(N) - RSS(1 user)) / (N - 1).

    python bench/memory.py [--quick] [--locust]     # or through bench/run.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCRIPTS = BENCH / "scripts"
sys.path.insert(0, str(BENCH))

from nginx import Nginx, pinned, proc_cpu_seconds  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- process measurement ------------------------------------------------------------------------------
def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_pressure() -> float | None:
    """``some avg10`` of /proc/pressure/cpu: % of the last 10 s some task waited for a CPU (other load)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return None


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE / 1048576.0  # MiB, like ru_maxrss below
    except (OSError, IndexError, ValueError):
        return None


class Measured:
    """A child process whose CPU and RSS are sampled every ``interval`` s; reaped with ``wait4`` for
    ``ru_maxrss``. stdout/stderr go to files (no pipe can fill up)."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, interval: float = 0.5,
                 cwd: Path = REPO) -> None:
        self.cmd = cmd
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.loadavg = os.getloadavg()[0]
        self.pressure_before = cpu_pressure()
        self.pressure_after: float | None = None
        self.t0 = time.time()
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, preexec_fn=_raise_nofile)
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (seconds since start, cpu seconds, rss MB)
        self.returncode: int | None = None
        self.maxrss_mb = 0.0
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self._next = 0.0

    def poll(self) -> bool:
        """Sample if due; reap if exited. True once the process is gone."""
        if self.returncode is not None:
            return True
        now = time.time()
        if now >= self._next:
            self._next = now + self.interval
            rss = _rss_mb(self.proc.pid)
            if rss is not None:
                self.samples.append((now - self.t0, proc_cpu_seconds(self.proc.pid), rss))
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.wall_s = time.time() - self.t0
        self.pressure_after = cpu_pressure()
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode
        self.maxrss_mb = usage.ru_maxrss / 1024.0  # KiB on Linux
        self.cpu_s = usage.ru_utime + usage.ru_stime
        return True

    def kill(self) -> None:
        if self.returncode is None:
            self.proc.kill()
            while not self.poll():
                time.sleep(0.05)

    def stdout(self) -> str:
        self._out.seek(0)
        return self._out.read().decode(errors="replace")

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def cpu_at(self, t: float) -> float | None:
        """CPU seconds at ``t`` seconds after start, interpolated between samples."""
        prev = None
        for s in self.samples:
            if s[0] >= t:
                if prev is None:
                    return s[1]
                span = s[0] - prev[0]
                return prev[1] + (s[1] - prev[1]) * ((t - prev[0]) / span if span else 1.0)
            prev = s
        return prev[1] if prev else None

    def cpu_percent(self, start: float, end: float) -> float | None:
        """Mean CPU % (100 = one core) between two offsets from the start."""
        a, b = self.cpu_at(start), self.cpu_at(end)
        if a is None or b is None or end <= start:
            return None
        return round(100.0 * (b - a) / (end - start), 1)

    def rss_median(self, start: float, end: float) -> float | None:
        values = [s[2] for s in self.samples if start <= s[0] <= end]
        return round(statistics.median(values), 1) if values else None


def run_all(procs: list[Measured], timeout: float, tick: Callable[[], object] | None = None) -> None:
    """Wait for every process (sampling all of them, and calling ``tick`` on every pass); kill what outlives
    ``timeout``."""
    deadline = time.time() + timeout
    while not all([p.poll() for p in procs]):  # a list: every process is sampled on every pass
        if tick is not None:
            tick()
        if time.time() > deadline:
            for p in procs:
                p.kill()
            raise RuntimeError(f"timed out after {timeout:.0f}s: {procs[0].cmd}")
        time.sleep(0.05)


def loadgen_cmd(script: str, host: str, users: int, spawn_rate: float, seconds: float, json_path: str,
                extra: tuple[str, ...] = (), cpu: str | None = "0") -> list[str]:
    return pinned(cpu, [sys.executable, "-m", "loadgen", "run", "-f", str(SCRIPTS / script), "-H", host,
                        "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s", "-q", "--json", json_path,
                        *extra])


def bench_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def started_epoch(report: dict) -> float:
    return datetime.fromisoformat(report["started_at"]).timestamp()


def timeline_rate(report: dict, start: float, end: float) -> float | None:
    """Requests per second over the timeline points with ``start < t <= end`` (points are ~1 s apart)."""
    points = report.get("timeline", [])
    prev_t = 0.0
    total = 0
    span = 0.0
    for p in points:
        if start < p["t"] <= end:
            total += p["requests"]
            span += p["t"] - prev_t
        prev_t = p["t"]
    return round(total / span, 1) if span > 0 else None


def full_seconds(report: dict) -> list[dict]:
    """Timeline points that cover a whole second (the last point is the partial tail)."""
    points = report.get("timeline", [])
    out, prev = [], 0.0
    for p in points:
        if 0.9 <= p["t"] - prev <= 1.1:
            out.append(p)
        prev = p["t"]
    return out


# ---- the memory test ------------------------------------------------------------------------------------
def _loadgen_case(name: str, servers: list[Nginx], users_each: int, seconds: float, rate: float,
                  tmp: Path) -> dict[str, Any]:
    """``len(servers)`` loadgen processes of ``users_each`` users, process i against server i."""
    procs, paths = [], []
    for i, server in enumerate(servers):
        path = str(tmp / f"{name}-{i}.json")
        paths.append(path)
        cmd = loadgen_cmd("loadgen_paced.py", server.https_url, users_each, max(users_each, 1), seconds, path,
                          extra=("--insecure",))
        procs.append(Measured(cmd, env=bench_env(BENCH_RATE=str(rate))))
    run_all(procs, timeout=seconds + 120)
    reports = []
    for p, path in zip(procs, paths):
        if p.returncode not in (0, 1) or not Path(path).exists():
            raise RuntimeError(f"{name}: loadgen exited {p.returncode}: {p.stderr()[-1500:]}")
        with open(path) as f:
            reports.append(json.load(f))
    interval = 1.0 / rate
    # the last 20 s (two whole intervals): before that come spawning, every user's first TLS handshake and, when
    # the core could not keep up with those, the catch-up of late slots (they are made up within one interval)
    steady = (max(min(2 * interval + 2, seconds / 2), seconds - 21), seconds - 1)
    total_users = users_each * len(servers)
    achieved = [timeline_rate(r, *steady) for r in reports]
    spawn, rss_running, cpu_steady = [], [], []
    for p, r in zip(procs, reports):
        offset = started_epoch(r) - p.t0  # interpreter start-up and imports happen before the test starts
        done = next((pt["t"] for pt in r["timeline"] if pt["users"] >= users_each), None)
        cpu_start = p.cpu_at(offset)
        cpu_done = p.cpu_at(offset + done) if done is not None else None
        spawn.append({"startup_cpu_s": round(cpu_start, 2) if cpu_start is not None else None,
                      "spawn_cpu_s": round(cpu_done - cpu_start, 2)
                      if cpu_start is not None and cpu_done is not None else None,
                      "all_started_at_s": done})
        # running RSS: median of the samples over the steady window, per process (summed below)
        rss_running.append(p.rss_median(offset + steady[0], offset + steady[1]))
        cpu_steady.append(p.cpu_percent(offset + steady[0], offset + steady[1]))
    result = {
        "case": name, "users": total_users, "processes": len(servers), "rate_per_user": rate,
        "target_rps": round(total_users * rate, 1),
        "achieved_rps": round(sum(a or 0 for a in achieved), 1),
        "rss_running_mb": round(sum(x or 0 for x in rss_running), 1),
        "rss_peak_mb": round(sum(p.maxrss_mb for p in procs), 1),
        "cpu_s": round(sum(p.cpu_s for p in procs), 2),
        "cpu_percent_steady": cpu_steady,
        "failures": sum(r["totals"]["failures"] for r in reports),
        "missed": sum(r["totals"].get("missed", 0) for r in reports),
        "connections_opened": sum(r["connections"]["opened"] for r in reports),
        "tls_full": sum(r["connections"]["tls_full"] for r in reports),
        "tls_resumed": sum(r["connections"]["tls_resumed"] for r in reports),
        "spawn": spawn,
        "steady_window_s": list(steady),
        "loadavg_before": procs[0].loadavg,
        "cpu_pressure_after": procs[0].pressure_after,
        "command": " ".join(procs[0].cmd).replace(str(REPO) + "/", ""),
    }
    return result


def _locust_case(name: str, server: Nginx, users: int, seconds: float, rate: float, tmp: Path) -> dict[str, Any]:
    from locust_env import locust_command, parse_locust_json

    cmd = locust_command(SCRIPTS / "locust_paced.py", server.https_url, users, users, seconds)
    proc = Measured(cmd, env=bench_env(BENCH_RATE=str(rate)))
    run_all([proc], timeout=seconds + 180)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{name}: locust exited {proc.returncode}: {proc.stderr()[-1500:]}")
    # Locust spends ~26 s spawning 1k HTTPS users: the achieved rate is over the last 20 full seconds (two whole
    # 10 s intervals: a window that is not a multiple of the interval misreads a periodic rate)
    stats = parse_locust_json(proc.stdout(), last=20 if users > 1 else None)
    return {
        "case": name, "users": users, "processes": 1, "rate_per_user": rate, "target_rps": users * rate,
        "achieved_rps": stats["steady_rps"], "rss_running_mb": proc.rss_median(seconds - 20, seconds - 1),
        "rss_peak_mb": round(proc.maxrss_mb, 1), "cpu_s": round(proc.cpu_s, 2),
        "failures": stats["failures"], "loadavg_before": proc.loadavg, "cpu_pressure_after": proc.pressure_after,
        "command": " ".join(cmd).replace(str(REPO) + "/", ""),
    }


def run_memory(quick: bool = False, locust: bool = True, log: Any = print,
               raw_dir: Path | None = None) -> dict[str, Any]:
    """All cases; loadgen's JSON reports are kept in ``raw_dir`` when given."""
    rate = 0.1
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-mem-") as d, Nginx("127.0.0.1") as a, \
            Nginx("127.0.0.2") as b:
        tmp = raw_dir or Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        plan = [("baseline", [a], 1, 12.0), ("1k", [a], 1000, 35.0), ("10k", [a], 10000, 45.0),
                ("30k", [a, b], 15000, 55.0)]
        if quick:
            plan = [("baseline", [a], 1, 8.0), ("1k", [a], 1000, 20.0), ("10k", [a], 10000, 20.0)]
        for name, servers, each, seconds in plan:
            log(f"  memory {name}: {each * len(servers)} HTTPS users x constant_throughput({rate}), {seconds:.0f}s")
            cases.append(_loadgen_case(name, servers, each, seconds, rate, tmp))
        if locust:
            for name, users, seconds in (("locust-baseline", 1, 12.0), ("locust-1k", 1000, 60.0)):
                log(f"  memory {name}: Locust FastHttpUser, {users} HTTPS users, {seconds:.0f}s")
                try:
                    cases.append(_locust_case(name, a, users, seconds, rate, tmp))
                except Exception as exc:  # noqa: BLE001 - a missing Locust must not lose the loadgen figures
                    log(f"  memory {name}: failed: {exc}")
    base = {c["case"]: c for c in cases}
    for c in cases:
        ref = base.get("locust-baseline" if c["case"].startswith("locust") else "baseline")
        if ref is None or c["users"] <= 1:
            continue
        for key in ("rss_running_mb", "rss_peak_mb"):
            if c.get(key) is not None and ref.get(key) is not None:
                # a multi-process case pays the baseline once per process
                extra = c[key] - ref[key] * c["processes"]
                c[key.replace("_mb", "_kb_per_user")] = round(extra * 1024 / (c["users"] - c["processes"]), 1)
    return {"section": "memory", "cases": cases}


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| case | users (procs) | RSS running MiB | KiB/user | peak RSS MiB | KiB/user (peak) | spawn CPU s "
             "| achieved / target req/s | failures / missed slots |", "|---|---|---|---|---|---|---|---|---|"]
    for c in result["cases"]:
        spawn = c.get("spawn") or []
        spawn_cpu = ", ".join(str(s["spawn_cpu_s"]) for s in spawn) if spawn and c["users"] > 1 else "-"
        achieved = f"{c['achieved_rps']} / {c['target_rps']:g}" if c["users"] > 1 else "-"
        lines.append(
            f"| {c['case']} | {c['users']:,} ({c['processes']}) | {c['rss_running_mb']} "
            f"| {c.get('rss_running_kb_per_user', '-')} | {c['rss_peak_mb']} | {c.get('rss_peak_kb_per_user', '-')} "
            f"| {spawn_cpu} | {achieved} | {c['failures']} / {c.get('missed', '-')} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="loadgen memory benchmark")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--locust", action="store_true", help="also Locust 1k HTTPS users (installs Locust)")
    args = parser.parse_args()
    res = run_memory(quick=args.quick, locust=args.locust)
    print("\n".join(table(res)))
    print(json.dumps(res, indent=1))
