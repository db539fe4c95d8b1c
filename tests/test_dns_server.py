"""DNS against a real server: `loadgen run --dns-server` with dnsmasq on 127.0.0.1, counted on both sides.

Every lookup goes to our own dnsmasq (never the machine's resolver). dnsmasq logs one ``query[A] NAME`` line
per DNS question it receives; the client asks one family per question (A; AAAA only for a name without A
records), so the report's ``dns_lookups`` must equal what dnsmasq logged.
"""

from __future__ import annotations

import math
import random
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_loadgen
from servers import start_target, stop_process, target_stats, wait_accepting

DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
pytestmark = pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq is not installed (apt-get install dnsmasq)")

SCRIPT = """
from loadgen import HttpUser, StopUser, constant, task

class Conn(HttpUser):
    keep_alive = False          # a new connection (and a DNS cache check) per request
    wait_time = constant({wait})
    limit = {limit}

    def on_start(self):
        self.n = 0

    @task
    def index(self):
        self.client.get("/")
        self.n += 1
        if self.limit and self.n >= self.limit:
            raise StopUser()
"""


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class Dnsmasq:
    """dnsmasq on 127.0.0.1:<port> (UDP and TCP), answering only the names configured below.

    svc.loadgen.test (any name under loadgen.test) -> 127.0.0.1; rr.test -> 127.0.0.1 and 127.0.0.2;
    anything under nx.test -> NXDOMAIN.
    """

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "dnsmasq.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        # below the ephemeral range: a port there is not taken by some client connection a moment later
        for _ in range(20):
            port = random.randint(20000, 32000)
            if not _port_free(port):
                continue
            self.log.write_text("")
            proc = subprocess.Popen(
                [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", f"--port={port}",
                 "--listen-address=127.0.0.1", "--bind-interfaces", "--address=/loadgen.test/127.0.0.1",
                 "--host-record=rr.test,127.0.0.1", "--host-record=rr.test,127.0.0.2", "--address=/nx.test/",
                 "--log-queries", f"--log-facility={self.log}", f"--pid-file={tmp / 'dnsmasq.pid'}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and proc.poll() is None and "started" not in self.log.read_text():
                time.sleep(0.02)
            if proc.poll() is None and "started" in self.log.read_text():
                self.proc, self.port = proc, port
                return
            stop_process(proc)
        raise RuntimeError("dnsmasq did not start on any of 20 ports")

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)  # SIGTERM: dnsmasq flushes its log
            self.proc = None

    def queries(self, name: str, qtype: str = "A") -> int:
        """DNS questions of type ``qtype`` received for ``name``; call after stop(). A lookup asks A and
        AAAA together, so the A questions count the lookups."""
        return sum(1 for line in self.log.read_text().splitlines() if f"]: query[{qtype}]" in line
                   and line.split("]: query[", 1)[1].split()[1] == name)


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    server = Dnsmasq(tmp_path)
    yield server
    server.stop()


def _run(tmp_path: Path, dns: Dnsmasq, host: str, *args: str, users: int = 10, seconds: float = 3,
         wait: float = 0, limit: int = 0) -> dict:
    script = tmp_path / "dns_users.py"
    script.write_text(textwrap.dedent(SCRIPT.format(wait=wait, limit=limit)))
    result = run_loadgen(["run", "-f", str(script), "-H", host, "-u", str(users), "-r", "1000",
                          "-t", f"{seconds}s", "-q", "--dns-server", dns.server, *args, "--json", "r.json"],
                         tmp_path, timeout=60)
    assert result.report is not None, result.stderr
    return result.report


@pytest.mark.parametrize("ttl", [None, 1.0])
def test_lookups_are_what_the_server_saw_and_at_most_one_per_ttl(tmp_path, dnsmasq, fresh_target, ttl) -> None:
    port = fresh_target.rsplit(":", 1)[1]
    args = () if ttl is None else ("--dns-ttl", str(ttl))
    report = _run(tmp_path, dnsmasq, f"http://svc.loadgen.test:{port}", *args, users=20, seconds=3)
    dnsmasq.stop()
    conns, totals = report["connections"], report["totals"]
    assert totals["failures"] == 0 and totals["requests"] >= 1000, report["errors"]
    assert conns["opened"] >= totals["requests"]  # keep_alive = False: one connection per request
    lookups = conns["dns_lookups"]
    assert lookups == dnsmasq.queries("svc.loadgen.test")
    if ttl is None:
        assert lookups == 1  # the default TTL (300 s) outlives the test
    else:
        assert 2 <= lookups <= math.ceil(report["duration_s"] / ttl) + 1
    assert conns["dns_hits"] + lookups >= conns["opened"]


def test_ttl_zero_is_one_lookup_per_connection(tmp_path, dnsmasq, fresh_target) -> None:
    port = fresh_target.rsplit(":", 1)[1]
    report = _run(tmp_path, dnsmasq, f"http://svc.loadgen.test:{port}", "--dns-ttl", "0", users=1, seconds=2,
                  limit=200)
    dnsmasq.stop()
    conns = report["connections"]
    assert report["totals"]["requests"] == 200 and report["totals"]["failures"] == 0, report["errors"]
    assert conns["opened"] == conns["dns_lookups"] == dnsmasq.queries("svc.loadgen.test") == 200
    assert dnsmasq.queries("svc.loadgen.test", "AAAA") == 200  # both families, every lookup
    assert conns["dns_hits"] == 0


def test_round_robin_spreads_connections_over_both_addresses(tmp_path, dnsmasq) -> None:
    first, url = start_target()
    port = url.rsplit(":", 1)[1]
    second = None
    try:
        second, url2 = start_target(extra_args=("--host", "127.0.0.2", "--port", port))
        wait_accepting("127.0.0.2", int(port), proc=second)
        report = _run(tmp_path, dnsmasq, f"http://rr.test:{port}", "--dns-select", "round-robin", users=4,
                      seconds=2)
        a, b = target_stats(url)["connections"], target_stats(url2)["connections"]
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    dnsmasq.stop()
    opened = report["connections"]["opened"]
    assert report["totals"]["failures"] == 0, report["errors"]
    assert opened >= 200 and opened <= a + b <= opened + 4  # + connects cut by the stop (at most one a user)
    assert abs(a - b) <= max(4, opened // 50), (a, b)  # alternating, give or take the users in flight
    assert report["connections"]["dns_lookups"] == dnsmasq.queries("rr.test") == 1


def test_nxdomain_is_one_query_per_negative_ttl_and_a_normalised_failure(tmp_path, dnsmasq) -> None:
    report = _run(tmp_path, dnsmasq, "http://nope.nx.test:9", users=5, seconds=2, wait=0.002)
    dnsmasq.stop()
    totals = report["totals"]
    assert totals["requests"] == totals["failures"] >= 500
    # the negative answer is cached for 5 s (dns_negative_ttl): one question for the whole test
    assert report["connections"]["dns_lookups"] == dnsmasq.queries("nope.nx.test") == 1
    assert report["connections"]["opened"] == 0
    errors = report["errors"]
    assert len(errors) == 1 and errors[0]["count"] == totals["failures"], errors
    assert "cannot resolve nope.nx.test" in errors[0]["error"], errors
