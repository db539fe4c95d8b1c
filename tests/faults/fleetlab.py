"""A loadgen fleet inside a network lab: the built-in target, a master and workers, each in its own
namespace, with the target's own access log as the truth every scenario is judged by."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.fleet.keyring import KEYS_ENV, create_fleet
from tests.netlab import REPO, Host, Lab, wait_for_port

TARGET_PORT = 8080
MASTER_PORT = 5557
RELAY_TARGET_PORT = 18080
RELAY_MASTER_PORT = 15557

SCRIPT = """\
from loadgen import HttpUser, task, constant_throughput


class Steady(HttpUser):
    wait_time = constant_throughput({rate})

    @task
    def hit(self):
        self.client.get("/")
"""

OPEN_SCRIPT = """\
from loadgen import HttpUser, task


class Arrival(HttpUser):
    @task
    def hit(self):
        self.client.get("/")
"""


@dataclass
class FleetLab:
    """The lab's hosts and processes for one scenario."""

    directory: Path
    lab: Lab = field(default_factory=Lab)
    target: Host | None = None
    master_host: Host | None = None
    worker_hosts: list[Host] = field(default_factory=list)
    master: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    delay_ms: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = dict(os.environ, PYTHONUNBUFFERED="1",
                        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        self.access_log = self.directory / "access.log"
        keys = self.directory / "fleet-keys"  # the fleet runs as users run it: CURVE, the keys from 'loadgen keys'
        if not keys.exists():
            create_fleet(str(keys))
        self.env[KEYS_ENV] = str(keys)

    # ---- start -------------------------------------------------------------------------------------------
    def build(self, workers: int, delay_ms: float = 0.0, loss_percent: int = 0) -> None:
        """Namespaces for the target, the master and ``workers`` workers; the target started."""
        self.delay_ms = delay_ms
        self.target = self.lab.host("target")
        self.master_host = self.lab.host("master")
        self.worker_hosts = [self.lab.host(f"w{i}") for i in range(workers)]
        if loss_percent:
            for host in self.lab.hosts:
                host.lose(loss_percent)
        self.target.popen([sys.executable, "-m", "loadgen.target", "--host", self.target.ip, "--port",
                           str(TARGET_PORT), "--access-log", str(self.access_log)],
                          self.directory / "target.out", env=self.env)
        wait_for_port(self.master_host, self.target.ip, TARGET_PORT)
        if delay_ms:
            for host in [self.master_host, *self.worker_hosts]:
                self._relay(host, RELAY_TARGET_PORT, self.target.ip, TARGET_PORT)
            for host in self.worker_hosts:
                self._relay(host, RELAY_MASTER_PORT, self.master_host.ip, MASTER_PORT)

    def _relay(self, host: Host, port: int, ip: str, upstream: int) -> None:
        """Each direction delayed by half the round trip."""
        host.popen([sys.executable, str(REPO / "tests" / "delay_relay.py"), f"127.0.0.1:{port}", f"{ip}:{upstream}",
                    str(self.delay_ms / 2)], self.directory / f"relay-{host.name}-{port}.out", env=self.env)
        wait_for_port(host, "127.0.0.1", port)

    @property
    def target_url(self) -> str:
        assert self.target is not None
        return f"http://127.0.0.1:{RELAY_TARGET_PORT}" if self.delay_ms else f"http://{self.target.ip}:{TARGET_PORT}"

    def write_script(self, rate: float = 10.0, open_model: bool = False, extra: str = "") -> Path:
        path = self.directory / "script.py"
        path.write_text(extra + (OPEN_SCRIPT if open_model else SCRIPT.format(rate=rate)))
        return path

    def start_master(self, script: Path, *args: str, expect: int | None = None) -> subprocess.Popen[bytes]:
        assert self.master_host is not None
        argv = [sys.executable, "-m", "loadgen", "master", "-f", str(script), "-H", self.target_url,
                "--bind", f"{self.master_host.ip}:{MASTER_PORT}", "--expect-workers",
                str(expect if expect is not None else len(self.worker_hosts)), "--json",
                str(self.directory / "report.json"), "-q", *args]
        self.master = self.master_host.popen(argv, self.directory / "master.out", env=self.env, cwd=self.directory)
        return self.master

    def start_worker(self, index: int, *args: str) -> subprocess.Popen[bytes]:
        host = self.worker_hosts[index]
        assert self.master_host is not None
        master = f"127.0.0.1:{RELAY_MASTER_PORT}" if self.delay_ms else f"{self.master_host.ip}:{MASTER_PORT}"
        proc = host.popen([sys.executable, "-m", "loadgen", "worker", "--master", master, *args],
                          self.directory / f"worker-{index}.out", env=self.env, cwd=self.directory)
        while len(self.workers) <= index:
            self.workers.append(proc)
        self.workers[index] = proc
        return proc

    # ---- during ------------------------------------------------------------------------------------------
    def wait_for_load(self, timeout: float = 60.0) -> float:
        """Wait for the target's first request; returns the wall-clock time of it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.access_log.exists() and self.access_log.stat().st_size > 0:
                first = self.access_log.read_text(errors="replace").splitlines()[0]
                return float(first.split()[-1])
            if self.master is not None and self.master.poll() is not None:
                raise AssertionError(f"the master exited early:\n{self.output('master')[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no load within {timeout:g} s:\n{self.output('master')[-3000:]}")

    def partition(self, index: int) -> None:
        """Cut worker ``index`` from the master (it still reaches the target)."""
        assert self.master_host is not None
        self.worker_hosts[index].cut_from(self.master_host)

    def heal(self, index: int) -> None:
        self.worker_hosts[index].heal()

    @staticmethod
    def pause(proc: subprocess.Popen[bytes], seconds: float) -> None:
        proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        proc.send_signal(signal.SIGCONT)

    # ---- after -------------------------------------------------------------------------------------------
    def finish(self, timeout: float = 120.0) -> dict[str, Any]:
        assert self.master is not None
        try:
            code = self.master.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the master did not finish:\n{self.output('master')[-3000:]}") from None
        assert code in (0, 1), f"master exited {code}:\n{self.output('master')[-3000:]}"
        time.sleep(0.5)
        return json.loads((self.directory / "report.json").read_text())

    def output(self, name: str) -> str:
        path = self.directory / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def served(self) -> list[float]:
        """When the target answered each request (its access log), sorted."""
        return sorted(float(line.split()[-1]) for line in self.access_log.read_text(errors="replace").splitlines()
                      if line.strip())

    def close(self) -> None:
        self.lab.close()


def per_second(times: list[float], start: float) -> list[int]:
    """Requests the target served in each whole second after ``start``."""
    counts = Counter(int(t - start) for t in times if t >= start)
    return [counts.get(second, 0) for second in range(max(counts) + 1 if counts else 0)]


def gaps_ms(times: list[float]) -> list[float]:
    return [(b - a) * 1000.0 for a, b in zip(times, times[1:], strict=False)]
