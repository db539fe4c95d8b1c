"""A small network lab for fault tests: one Linux network namespace per role (master, each worker, the
target), each joined by a veth pair to a bridge in a hub namespace. Cuts and packet loss are nftables rules
inside a namespace; latency is a userspace relay (``tests/delay_relay.py``) because this kernel has no
``sch_netem``. Every namespace is deleted on ``close()``.

Needs root, iproute2 and nftables. When a namespace cannot be made, ``Lab`` raises ``LabUnavailable`` with
the reason, and the tests fail with it: they never skip.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_labs = itertools.count()


class LabUnavailable(RuntimeError):
    """Network namespaces cannot be created here."""


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabUnavailable(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[:300]}")
    return result


class Host:
    """One namespace with one address on the lab's bridge."""

    def __init__(self, lab: Lab, name: str, index: int) -> None:
        self.lab = lab
        self.name = name
        self.ns = f"{lab.prefix}-{name}"
        self.ip = f"{lab.subnet}.{index}"
        veth, peer = f"{lab.prefix[-6:]}{index}a", f"{lab.prefix[-6:]}{index}b"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", veth, "netns", self.ns)
        sh("ip", "link", "set", peer, "netns", lab.hub)
        sh("ip", "-n", lab.hub, "link", "set", peer, "master", "br0")
        sh("ip", "-n", lab.hub, "link", "set", peer, "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.ns, "link", "set", veth, "name", "eth0")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.ip}/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", self.ns, "nft", "-f", "-", stdin=(
            "table inet lab {\n"
            " chain input { type filter hook input priority 0; policy accept; }\n"
            " chain output { type filter hook output priority 0; policy accept; }\n"
            "}\n"))

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def popen(self, argv: list[str], log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """A process inside this namespace (``ip netns exec`` execs it: the pid is the process's own)."""
        handle = open(log, "wb")  # noqa: SIM115 - owned by the process record
        proc = subprocess.Popen(self.argv(*argv), stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        self.lab.procs.append((proc, handle))
        return proc

    def nft(self, rule: str) -> None:
        sh("ip", "netns", "exec", self.ns, "nft", *rule.split())

    def cut_from(self, other: Host) -> None:
        """Drop every packet between this host and ``other`` (both directions, seen from here)."""
        self.nft(f"add rule inet lab input ip saddr {other.ip} drop comment \"cut-{other.name}\"")
        self.nft(f"add rule inet lab output ip daddr {other.ip} drop comment \"cut-{other.name}\"")

    def heal(self) -> None:
        """Remove every cut and every loss rule."""
        self.nft("flush chain inet lab input")
        self.nft("flush chain inet lab output")

    def lose(self, percent: int) -> None:
        """Drop ``percent`` % of the packets leaving and entering this host on its lab link."""
        for chain in ("input", "output"):
            direction = "iifname" if chain == "input" else "oifname"
            self.nft(f"add rule inet lab {chain} {direction} eth0 numgen random mod 100 < {percent} drop")


class Lab:
    """The namespaces of one test; ``close()`` kills their processes and deletes them."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise LabUnavailable("the fault tests need root to create network namespaces (CI runs as root)")
        for tool in ("ip", "nft"):
            if subprocess.run(["which", tool], capture_output=True).returncode != 0:
                raise LabUnavailable(f"{tool} is not installed: apt-get install -y iproute2 nftables")
        number = next(_labs)
        self.prefix = f"lg{os.getpid() % 10000}x{number}"
        self.subnet = f"10.{200 + (os.getpid() % 50)}.{number % 250}"
        self.hub = f"{self.prefix}-hub"
        self.hosts: list[Host] = []
        self.procs: list[tuple[subprocess.Popen[bytes], object]] = []
        sh("ip", "netns", "add", self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")

    def host(self, name: str) -> Host:
        host = Host(self, name, len(self.hosts) + 1)
        self.hosts.append(host)
        return host

    def close(self) -> None:
        for proc, handle in reversed(self.procs):
            if proc.poll() is None:
                try:
                    proc.kill()
                    proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            handle.close()  # type: ignore[attr-defined]
        for host in self.hosts:
            sh("ip", "netns", "del", host.ns, check=False)
        sh("ip", "netns", "del", self.hub, check=False)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def wait_for_port(host: Host, ip: str, port: int, timeout: float = 15.0) -> None:
    """Wait until ``ip:port`` accepts connections, as seen from inside ``host``."""
    deadline = time.monotonic() + timeout
    probe = ("import socket,sys\n"
             f"s=socket.create_connection(('{ip}',{port}),timeout=1)\n")
    while time.monotonic() < deadline:
        if subprocess.run(host.argv(sys.executable, "-c", probe), capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{ip}:{port} not reachable from {host.name} within {timeout:g} s")
