"""DNS cache logic (injected resolver and clock), plus the system and dnsmasq resolvers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import gevent
import pytest

from loadgen.client import COUNTERS, ClientFactory, ClientSettings, ConnectionCounters, DnsCache
from loadgen.client.dns import literal_ip, parse_server, server_resolver, system_resolver

if TYPE_CHECKING:
    from client_servers import CannedServer, FakeRecorder

pytest_plugins = ["client_servers"]


class FakeDns:
    """An injected resolver function: a table of answers, counting calls."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []
        self.delay = 0.0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if self.delay:
            gevent.sleep(self.delay)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def cache(dns: FakeDns, **kw: object) -> tuple[DnsCache, ConnectionCounters, Clock]:
    counters, clock = ConnectionCounters(), Clock()
    return DnsCache(resolver=dns, counters=counters, clock=clock, **kw), counters, clock  # type: ignore[arg-type]


def test_ttl_is_honoured() -> None:
    dns = FakeDns({"a.test": ["10.0.0.1"]})
    c, counters, clock = cache(dns, ttl=300.0)
    for _ in range(10):
        assert c.resolve("a.test", 80) == "10.0.0.1"
    assert dns.calls == ["a.test"] and counters.dns_lookups == 1 and counters.dns_hits == 9
    clock.t += 299.9
    c.resolve("a.test", 80)
    assert counters.dns_lookups == 1
    dns.table["a.test"] = ["10.0.0.9"]
    clock.t += 0.2
    assert c.resolve("a.test", 80) == "10.0.0.9" and counters.dns_lookups == 2


def test_ttl_zero_disables_the_cache() -> None:
    dns = FakeDns({"a.test": ["10.0.0.1"]})
    c, counters, _ = cache(dns, ttl=0)
    for _ in range(5):
        c.resolve("a.test", 80)
    assert counters.dns_lookups == 5 and counters.dns_hits == 0


def test_select_modes_spread_over_addresses() -> None:
    addrs = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    c, _, _ = cache(FakeDns({"m.test": addrs}), select="round-robin")
    assert [c.resolve("m.test", 80) for _ in range(6)] == addrs + addrs
    c, _, _ = cache(FakeDns({"m.test": addrs}), select="first")
    assert {c.resolve("m.test", 80) for _ in range(6)} == {"10.0.0.1"}
    c, _, _ = cache(FakeDns({"m.test": addrs}), select="random")
    assert {c.resolve("m.test", 80) for _ in range(200)} == set(addrs)
    assert c.lookup("m.test", 80) == addrs


def test_ipv4_preferred_unless_ipv6() -> None:
    table = {"d.test": ["::1", "10.0.0.1", "fe80::2", "10.0.0.2"], "six.test": ["::1"]}
    c, _, _ = cache(FakeDns(table))
    assert c.lookup("d.test", 80) == ["10.0.0.1", "10.0.0.2", "::1", "fe80::2"]  # v6 kept, tried after
    assert c.lookup("six.test", 80) == ["::1"]  # v6-only host still works
    c6, _, _ = cache(FakeDns(table), ipv6=True)
    assert c6.lookup("d.test", 80) == ["::1", "fe80::2", "10.0.0.1", "10.0.0.2"]


def test_negative_results_are_cached_briefly() -> None:
    dns = FakeDns({})
    c, counters, clock = cache(dns, negative_ttl=5.0)
    for _ in range(3):
        with pytest.raises(socket.gaierror):
            c.resolve("missing.test", 80)
    assert counters.dns_lookups == 1 and counters.dns_failures == 1 and counters.dns_hits == 2
    dns.table["missing.test"] = ["10.1.1.1"]
    clock.t += 5.1
    assert c.resolve("missing.test", 80) == "10.1.1.1" and counters.dns_lookups == 2


def test_literal_ips_are_not_lookups() -> None:
    dns = FakeDns({})
    c, counters, _ = cache(dns)
    assert c.resolve("127.0.0.1", 80) == "127.0.0.1"
    assert c.resolve("[::1]", 80) == "::1" and c.resolve("::1", 80) == "::1"
    assert dns.calls == [] and counters.dns_lookups == counters.dns_hits == 0
    assert literal_ip("example.com") is None and literal_ip("1.2.3.4") == "1.2.3.4"


def test_concurrent_misses_share_one_lookup() -> None:
    dns = FakeDns({"busy.test": ["10.0.0.1"]})
    dns.delay = 0.05
    c, counters, _ = cache(dns)
    results = gevent.joinall([gevent.spawn(c.resolve, "busy.test", 80) for _ in range(100)], timeout=5)
    assert {g.value for g in results} == {"10.0.0.1"}
    assert dns.calls == ["busy.test"] and counters.dns_lookups == 1 and counters.dns_hits == 99


def test_interrupted_lookup_releases_waiters() -> None:
    dns = FakeDns({"slow.test": ["10.0.0.1"]})
    dns.delay = 0.2
    c, _, _ = cache(dns)
    leader = gevent.spawn(c.resolve, "slow.test", 80)
    gevent.sleep(0.01)
    follower = gevent.spawn(c.resolve, "slow.test", 80)
    gevent.sleep(0.01)
    leader.kill()
    follower.join(timeout=2)
    assert follower.ready() and isinstance(follower.exception, OSError)


def test_system_resolver_localhost() -> None:
    assert "127.0.0.1" in system_resolver("localhost", 80)


def test_session_through_the_cache(http_server: CannedServer, recorder: FakeRecorder) -> None:
    COUNTERS.reset()
    f = ClientFactory(ClientSettings(), recorder)
    s = f.session(f"http://localhost:{http_server.port}", keep_alive=False)
    for _ in range(5):
        assert s.get("/").ok
    assert COUNTERS.dns_lookups == 1 and COUNTERS.dns_hits == 4
    f.close_all()
    # an unresolvable name, asked of a DNS server on loopback that is not there (never the machine's resolver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    f = ClientFactory(ClientSettings(dns_server=f"127.0.0.1:{dead}"), recorder)
    r = f.session("http://no-such-host.loadgen.test").get("/")
    assert r.status_code == 0 and r.error is not None and r.error.startswith("gaierror: "), r.error
    assert COUNTERS.dns_failures == 1
    f.close_all()


def test_parse_server() -> None:
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("::1") == ("::1", 53)


@pytest.fixture()
def dnsmasq(tmp_path: Path) -> Iterator[str]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq not installed")
    from servers import free_udp_tcp_port

    port = free_udp_tcp_port()
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(
        f"port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
        "host-record=multi.test,127.0.0.3\nhost-record=multi.test,127.0.0.4\n"
        "address=/one.test/127.0.0.1\n"
    )
    proc = subprocess.Popen(["dnsmasq", "-k", "-C", str(conf), f"--pid-file={tmp_path / 'pid'}",
                             f"--log-facility={tmp_path / 'log'}"])
    time.sleep(0.3)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=5)


def test_dns_server_setting(dnsmasq: str, http_server: CannedServer, recorder: FakeRecorder) -> None:
    resolve = server_resolver(dnsmasq)
    assert sorted(resolve("multi.test", 80)) == ["127.0.0.3", "127.0.0.4"]
    COUNTERS.reset()
    f = ClientFactory(ClientSettings(dns_server=dnsmasq), recorder)
    assert f.dns.lookup("multi.test", 80) in (["127.0.0.3", "127.0.0.4"], ["127.0.0.4", "127.0.0.3"])
    r = f.session(f"http://one.test:{http_server.port}").get("/")
    assert r.ok and r.content == b"hello"
    assert COUNTERS.dns_lookups == 2
    f.close_all()
