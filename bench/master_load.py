"""How much a master spends on a large fleet, and how late a worker's numbers reach the live snapshot.

Starts a real ``loadgen master`` (a subprocess, trivial script) and simulates N workers with raw DEALER
sockets in this process, speaking the protocol: hello, started, a heartbeat a second, and a realistic
one-second Stats delta a second (``Template``: 10 endpoints, latency and two phase histograms each, a few
errors), encoded by loadgen's own encoder.

Delay: the master merges each delta when it arrives; once a second (the controller's tick) it closes the
current second into a snapshot. Each delta for second k carries a known request count (9000 + k per worker),
so the report's timeline tells how many deltas of second k made it into snapshot k. A delta sent L ms before
a snapshot and found in it reached the snapshot within L ms.

* ``--phases spread`` (default, what real workers do: each picks a random phase): worker i sends L_i before
  the tick, L_i spread evenly from ``--min-lead`` (default 200 ms, the goal) to 980 ms. All on time ⇒ every
  delta reached its snapshot within ``--min-lead``.
* ``--phases burst`` (worst case: the whole fleet sends at once): every worker sends with the same lead,
  cycling 500, 200, 100, 50, 20 ms; reported per lead.

``snapshot_lag_ms``: how long after its nominal time each snapshot was taken. CPU: the master process's
user+system time over the steady part of the run, as % of one core. ``BENCH_DETAIL=1`` prints each second;
``BENCH_PROFILE=out.prof`` runs the master under cProfile.

    python bench/master_load.py --workers 200 --seconds 20 [--phases burst]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import msgpack
import psutil
import zmq

from loadgen.fleet.keyring import create_fleet, worker_keys
from loadgen.fleet.security import CurveKeys, id_suffix
from loadgen.stats.endpoint import Entry
from loadgen.stats.recorder import Recorder, StatsDelta
from loadgen.stats.wire import encode_delta

PROTOCOL_VERSION = 3  # loadgen.fleet.protocol.PROTOCOL_VERSION (kept literal: this bench speaks the protocol)
LEADS = (0.5, 0.2, 0.1, 0.05, 0.02)
BASE_REQUESTS = 9000  # per worker per second; + k in second k
SCRIPT = """\
from loadgen import User, constant, task


class Idle(User):
    wait_time = constant(1)

    @task
    def nothing(self):
        pass
"""


def packb(data: dict) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Template:
    """One host's delta for a second, encoded by loadgen's own encoder: ``BASE_REQUESTS`` requests over
    ``endpoints`` endpoints, latencies log-normal around 20 ms (a long tail to seconds), each request with its
    time to first byte and body phases, as kept-alive HTTP requests record them; a few errors on the last
    endpoint. ``for_second(k)`` adds k requests to endpoint 0 (the marker)."""

    def __init__(self, rng: random.Random, endpoints: int, processes: int = 1) -> None:
        self.processes = processes
        recorder = Recorder()
        for i in range(BASE_REQUESTS):
            latency = int(rng.lognormvariate(math.log(20_000), 0.9))
            ttfb = int(latency * rng.uniform(0.6, 0.95))
            endpoint = i % endpoints
            error = "HTTP 503 Service Unavailable" if endpoint == endpoints - 1 and i < 3 * endpoints else None
            recorder.record("GET", f"/api/resource-{endpoint}", latency, 512, error, ttfb_us=ttfb,
                            body_us=latency - ttfb)
        self.delta = recorder.flush()
        self.first = next(iter(self.delta.entries))

    def for_second(self, k: int) -> tuple[dict, dict]:
        """Second k's delta, with its endpoint histograms and without (held back, as a worker of a large fleet
        does on all but every ``histograms_every``-th delta: ``stats.cadence``)."""
        delta = StatsDelta()
        delta.entries = dict(self.delta.entries)
        marker = delta.entries[self.first] = Entry(*self.first)
        marker.merge(self.delta.entries[self.first])
        assert marker.phases is not None
        for _ in range(k):
            marker.latency.add(15_000)
            marker.phases.ttfb.add(12_000)
            marker.phases.body.add(3_000)
        marker.requests += k
        delta.errors = self.delta.errors
        delta.counters = {"opened": 0, "requests": BASE_REQUESTS + k}
        delta.users, delta.cpu_percent, delta.rss_mb, delta.t = 1, 35.0, 60.0, time.time()
        full = encode_delta(delta.seal())
        for key, entry in delta.entries.items():
            delta.entries[key] = light = Entry(*key)
            light.requests, light.failures, light.bytes = entry.requests, entry.failures, entry.bytes
        return full, encode_delta(delta)


def delta_shape(template: Template) -> dict:
    """How big one host's delta is: bytes on the wire, histograms, and non-empty buckets per histogram."""
    wire = template.for_second(1)[0]
    columns = wire["e"]
    histograms = columns["h"] + [t for phases in columns["ph"] for t in phases if t is not None]
    counts = memoryview(wire["C"]).cast({1: "B", 2: "H", 4: "I", 8: "Q"}[wire["W"]])
    return {"bytes": len(packb(wire)), "histograms": len(histograms) + 1,
            "buckets_per_histogram": round(len(counts) / (len(histograms) + 1)),
            "non_empty_per_histogram": round(sum(1 for n in counts if n) / (len(histograms) + 1))}


class SimWorker:
    def __init__(self, context: zmq.Context, port: int, index: int, template: Template,
                 keys: CurveKeys | None = None) -> None:
        # with CURVE (the default, as users run it) a worker's id ends with its key's suffix, as loadgen's do
        self.id = f"sim-{index:04d}" + (f"-{id_suffix(keys.public)}" if keys is not None else "")
        self.socket = context.socket(zmq.DEALER)
        if keys is not None:
            keys.apply_client(self.socket)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IDENTITY, self.id.encode())
        self.socket.setsockopt(zmq.SNDHWM, 100_000)
        self.processes = template.processes
        # a machine's merged delta carries a row per process (its own ids)
        self.rows = {f"{self.id}-p{i}": [1000, 0, 1, 35.0, 60.0, 0] for i in range(self.processes)} \
            if self.processes > 1 else None
        self.socket.connect(f"tcp://127.0.0.1:{port}")
        self.template = template
        self.test_id = ""
        self.welcomed = False
        self.target_at: float | None = None
        self.stopped = False
        self.beats = 0
        self.seq = 0  # numbered deltas, as real workers send them
        self.histograms_every = 1  # Start.histograms_every: endpoint histograms on every n-th delta only

    def send(self, data: dict) -> None:
        self.socket.send(packb(data))

    def hello(self) -> None:
        self.send({"type": "hello", "version": PROTOCOL_VERSION, "worker_id": self.id, "host": "sim",
                   "pid": os.getpid(), "session": self.id, "processes": self.processes})

    def stats(self, delta: dict, final: bool = False) -> None:
        self.seq += 1
        self.send({"type": "stats", "test_id": self.test_id, "delta": delta, "final": final, "run": "r",
                   "seq": self.seq, "last": self.seq})

    def heartbeat(self) -> None:
        self.beats += 1
        self.send({"type": "heartbeat", "state": "running" if self.test_id else "idle", "users": 1,
                   "cpu_percent": 35.0, "rss_mb": 60.0, "test_id": self.test_id, "seq": self.beats,
                   "sent": time.monotonic()})

    def handle(self, frame: bytes) -> None:
        message = msgpack.unpackb(frame, raw=False)
        kind = message.get("type")
        if kind == "welcome":
            self.welcomed = True
        elif kind == "start":
            self.test_id = message["test_id"]
            self.histograms_every = max(1, int(message.get("histograms_every", 1)))
            self.send({"type": "started", "test_id": self.test_id, "run": "r"})
        elif kind == "target" and self.target_at is None and sum(message["counts"].values()) > 0:
            self.target_at = time.monotonic()
        elif kind == "stop":
            final = StatsDelta()
            final.t = time.time()
            self.stats(encode_delta(final), final=True)
            self.send({"type": "bye", "reason": "test finished"})
            self.stopped = True


def schedule(t0: float, workers: int, seconds: int, phases: str,
             min_lead: float) -> list[tuple[float, int, int, float]]:
    """(send time, second, worker, lead) for every delta, latest first (popped from the end)."""
    events = []
    for k in range(1, seconds + 1):
        for i in range(workers):
            if phases == "burst":
                lead = LEADS[(k - 1) % len(LEADS)]
            else:
                lead = min_lead + (0.98 - min_lead) * i / max(1, workers - 1)
            events.append((t0 + k - lead, k, i, lead))
    events.sort(reverse=True)
    return events


def raise_file_limit() -> None:
    """One socket per simulated host: lift the soft open-files limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(workers: int, seconds: int, endpoints: int, phases: str, min_lead: float,
        heartbeat_timeout: float = 10.0, processes: int = 1, every: int = 0, curve: bool = True) -> dict:
    """``every``: send endpoint histograms every n-th delta whatever the master says (0: as it says)."""
    raise_file_limit()  # before the master starts: it inherits the limit
    folder = tempfile.mkdtemp(prefix="loadgen-bench-")
    script = os.path.join(folder, "idle.py")
    with open(script, "w") as handle:
        handle.write(SCRIPT)
    port = free_port()
    report_path = os.path.join(folder, "report.json")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    argv = [sys.executable, *profile, "-m", "loadgen", "master", "-f", script, "-u", str(workers * processes),
            "-r", "100000",
            "-t", f"{seconds}s", "--expect-workers", str(workers), "--expect-workers-timeout", "60",
            "--heartbeat-timeout", str(heartbeat_timeout), "--bind", f"127.0.0.1:{port}", "--json", report_path, "-q"]
    keys = None
    if curve:
        create_fleet(os.path.join(folder, "keys"))
        argv += ["--keys", os.path.join(folder, "keys", "master")]
        keys = worker_keys(os.path.join(folder, "keys", "worker"))
    else:
        argv.append("--insecure-no-auth")
    with open(os.path.join(folder, "master.err"), "wb") as err:
        master = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=folder, env=env)
    context = zmq.Context()
    context.set(zmq.MAX_SOCKETS, max(1024, workers + 64))  # one DEALER per simulated host
    rng = random.Random(7)
    templates = [Template(rng, endpoints, processes) for _ in range(8)]
    sims = [SimWorker(context, port, i, templates[i % len(templates)], keys) for i in range(workers)]
    poller = zmq.Poller()
    for sim in sims:
        poller.register(sim.socket, zmq.POLLIN)
    by_socket = {sim.socket: sim for sim in sims}
    proc = psutil.Process(master.pid)
    sends: dict[int, tuple[float, float, float]] = {}  # k → (lead, first send wall, last send wall)
    cpu_window: list[tuple[float, float]] = []
    t0: float | None = None
    wall0 = 0.0
    rss_mb = None
    next_beat = time.monotonic()
    events: list[tuple[float, int, int, float]] = []
    payloads: dict[int, dict[int, dict]] = {}
    deadline = time.monotonic() + seconds + 120
    try:
        while time.monotonic() < deadline and master.poll() is None:
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + 1.0
                for sim in sims:
                    if not sim.welcomed:
                        sim.hello()
                    elif not sim.stopped:
                        sim.heartbeat()
            if t0 is None:
                started = [s.target_at for s in sims if s.target_at is not None]
                if len(started) == workers:
                    t0 = min(started)
                    wall0 = time.time() - (time.monotonic() - t0)
                    events = schedule(t0, workers, seconds, phases, min_lead)
            elif events and not any(s.stopped for s in sims):
                while events and events[-1][0] <= now:
                    _due, k, index, lead = events.pop()
                    if k not in payloads:
                        payloads[k] = {id(t): t.for_second(k) for t in templates}
                        payloads.pop(k - 2, None)
                    sim = sims[index]
                    sent = time.time()
                    full, light = payloads[k][id(sim.template)]
                    cadence = every or sim.histograms_every
                    payload = full if (k + index) % cadence == 0 else light
                    if sim.rows is not None and payload is full:  # process rows ride with the histograms
                        payload = dict(payload, w=sim.rows)
                    sim.stats(payload)
                    smallest, first, _last = sends.get(k, (lead, sent, sent))
                    sends[k] = (min(smallest, lead), first, time.time())
                    if index == 0 and k in (2, seconds - 1):
                        times = proc.cpu_times()
                        cpu_window.append((time.monotonic(), times.user + times.system))
                        rss_mb = round(proc.memory_info().rss / 1e6, 1)
            for socket_, _ in poller.poll(5):
                while True:
                    try:
                        frame = socket_.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    by_socket[socket_].handle(frame)
        code = master.wait(60)
    finally:
        if master.poll() is None:
            master.kill()
        context.destroy(linger=0)
    try:
        with open(report_path) as handle:
            report = json.load(handle)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = summarise(report, sends, cpu_window, wall0, workers, seconds, code)
    result["delta"] = delta_shape(templates[0])
    result["histograms_every"] = every or sims[0].histograms_every
    result["phases"] = phases
    result["master_rss_mb"] = rss_mb
    return result


def summarise(report: dict, sends: dict, cpu_window: list, wall0: float, workers: int, seconds: int,
              code: int) -> dict:
    started = datetime.fromisoformat(report["started_at"]).timestamp()
    timeline = report["timeline"]
    by_lead: dict[float, list[float]] = {}
    lag: list[float] = []
    late_previous = 0
    on_time_ratio: dict[int, float] = {}
    for k in sorted(sends):
        if k - 1 >= len(timeline):
            break
        point = timeline[k - 1]
        marker = BASE_REQUESTS + k
        previous = late_previous * (BASE_REQUESTS + k - 1)
        on_time = round((point["requests"] - previous) / marker)
        on_time = max(0, min(workers, on_time))
        late_previous = workers - on_time
        on_time_ratio[k] = on_time / workers
        lead, _first, last = sends[k]
        tick_wall = started + point["t"]
        lag.append((tick_wall - (wall0 + k)) * 1000)
        by_lead.setdefault(lead, []).append(on_time / workers)
        if os.environ.get("BENCH_DETAIL"):
            print(f"k={k} lead={lead} on_time={on_time} lag={lag[-1]:.0f}ms burst={1000 * (last - _first):.0f}ms "
                  f"sent_at={1000 * (last - wall0 - k):.0f}ms", file=sys.stderr)
    cpu = None
    if len(cpu_window) == 2:
        (t1, c1), (t2, c2) = cpu_window
        cpu = round(100 * (c2 - c1) / (t2 - t1), 1)
    all_on_time = [lead for lead, ratios in by_lead.items() if ratios and min(ratios) == 1.0]
    total = report["totals"]["requests"]
    expected = workers * sum(BASE_REQUESTS + k for k in sends)
    return {
        "workers": workers,
        "seconds": seconds,
        "master_exit": code,
        "master_cpu_percent_of_one_core": cpu,
        "send_span_ms": round(max((last - first) * 1000 for _lead, first, last in sends.values()), 1),
        "on_time_fraction": round(sum(on_time_ratio.values()) / max(1, len(on_time_ratio)), 4),
        "on_time_by_lead_ms": {str(int(lead * 1000)): round(min(r), 3) for lead, r in sorted(by_lead.items())},
        "smallest_lead_all_on_time_ms": int(min(all_on_time) * 1000) if all_on_time else None,
        "snapshot_lag_ms": {"median": round(sorted(lag)[len(lag) // 2], 1), "max": round(max(lag), 1)} if lag else None,
        "reported_requests": total,
        "sent_requests": expected,
        "all_requests_counted": total == expected,
        "report_workers": len(report["workers"]),
        "false_losses": sum(1 for e in report.get("events", []) if e["kind"] == "lost"),
        "warnings": [w["kind"] for w in report["warnings"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--phases", choices=("spread", "burst"), default="spread")
    parser.add_argument("--min-lead", type=float, default=0.2, help="spread: the smallest lead, in seconds")
    parser.add_argument("--processes", type=int, default=16, help="--curve: processes per host (rows per delta)")
    parser.add_argument("--histograms-every", type=int, default=0,
                        help="send endpoint histograms every n-th delta, whatever the master asks (1: every delta)")
    parser.add_argument("--curve", type=str, default=None,
                        help="comma-separated fleet sizes (e.g. 100,500,1000,2000): one run each at the default "
                             "3 s heartbeat timeout, printed as a table")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="links without CURVE (the default is CURVE, as loadgen runs unless told otherwise)")
    args = parser.parse_args()
    curve = not args.insecure_no_auth
    if args.curve:
        print_curve([int(n) for n in args.curve.split(",")], args.seconds, args.endpoints, args.processes,
                    args.histograms_every, curve)
        return
    result = run(args.workers, args.seconds, args.endpoints, args.phases, args.min_lead,
                 every=args.histograms_every, curve=curve)
    print(json.dumps(result, indent=2))


def print_curve(sizes: list[int], seconds: int, endpoints: int, processes: int = 16, every: int = 0,
                curve: bool = True) -> list[dict]:
    """The master's cost as the fleet grows: one peer per host (its hub merges its processes' deltas)."""
    shape = delta_shape(Template(random.Random(7), endpoints, processes))
    print(f"master load: one delta a second per host ({processes} processes' rows), {endpoints} endpoints with "
          f"latency, TTFB and body each ({shape['histograms']} histograms, ~{shape['non_empty_per_histogram']} "
          f"non-empty buckets each, {shape['bytes'] // 1024} KiB), 3 s heartbeat timeout, "
          f"{'CURVE' if curve else 'no CURVE'}")
    print(f"{'hosts':>6} {'histograms every':>17} {'master CPU % of a core':>23} {'RSS MB':>7} {'on time':>8} "
          f"{'false losses':>13} {'all counted':>12}")
    results = []
    for size in sizes:
        result = run(size, seconds, endpoints, "spread", 0.2, heartbeat_timeout=3.0, processes=processes,
                     every=every, curve=curve)
        results.append(result)
        print(f"{size:>6} {str(result['histograms_every']) + ' s':>17} "
              f"{result['master_cpu_percent_of_one_core']!s:>23} {result['master_rss_mb']!s:>7} "
              f"{result['on_time_fraction']:>8} {result['false_losses']:>13} {result['all_requests_counted']!s:>12}",
              flush=True)
    return results


if __name__ == "__main__":
    main()
