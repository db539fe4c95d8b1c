"""Client truth that needs more than one request in a row: shared pools after the server closed its
idle connections, a slow first TLS response seen by the users that connect meanwhile, a server that
wants a client certificate, and names whose first address refuses (DNS from our own dnsmasq).

Every server is real and on loopback (tests/misbehaving.py); assertions are on what the server saw.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gevent
import pytest
from client_servers import FakeRecorder, make_cert
from gevent import ssl as gssl
from misbehaving import (
    RawServer,
    answering,
    closes_when_idle,
    free_v6_port_with_v4_closed,
    serving,
    slow_path,
)

from loadgen.client import COUNTERS, ClientFactory, ClientSettings

pytest_plugins = ["client_servers"]


def test_shared_pool_after_the_server_closed_its_idle_connections(recorder: FakeRecorder) -> None:
    """gunicorn closes idle keep-alives after 2 s, uvicorn after 5 s: none of that is a failed request."""
    with serving(closes_when_idle(0.3)) as server:
        COUNTERS.reset()
        factory = ClientFactory(ClientSettings(pool="shared", pool_size=4), recorder)
        sessions = [factory.session(server.url) for _ in range(4)]
        try:
            gevent.joinall([gevent.spawn(s.get, f"/warm/{i}") for i, s in enumerate(sessions)], raise_error=True)
            assert server.connections == 4
            gevent.sleep(0.7)  # every pooled connection is now closed by the server
            posts = [gevent.spawn(s.post, f"/order/{i}", data=b"x") for i, s in enumerate(sessions)]
            gevent.joinall(posts, raise_error=True)
        finally:
            factory.close_all()
        assert recorder.errors == [None] * 8, recorder.errors
        for i in range(4):
            assert len(server.requests_for(f"/order/{i}")) == 1
        assert COUNTERS.idle_dropped == 4 and COUNTERS.retries == 0
        assert server.connections == 8


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("truth-tls"))


def _server_context(cert_files: tuple[Path, Path], version: gssl.TLSVersion) -> gssl.SSLContext:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, cert_files))
    ctx.maximum_version = version
    return ctx  # type: ignore[return-value]


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_slow_first_response_does_not_delay_the_users_connecting_meanwhile(
    cert_files: tuple[Path, Path], recorder: FakeRecorder, version: str
) -> None:
    import ssl

    ctx = _server_context(cert_files, getattr(ssl.TLSVersion, version))
    with serving(slow_path("/slow", 3.0), tls=ctx) as server:  # type: ignore[arg-type]
        COUNTERS.reset()
        factory = ClientFactory(ClientSettings(insecure=True), recorder)
        try:
            leader = gevent.spawn(factory.session(server.url).get, "/slow")
            gevent.sleep(0.2)  # the leader has handshaken and waits for its response
            started = time.perf_counter()
            others = [gevent.spawn(factory.session(server.url).get, "/fast") for _ in range(3)]
            gevent.joinall(others, raise_error=True)
            others_done = time.perf_counter() - started
            leader.join()
        finally:
            factory.close_all()
        latencies = sorted(r.latency_us for r in (g.value for g in others))
        assert others_done < 1.0 and latencies[-1] < 1_000_000, latencies  # not the leader's 3 s
        assert leader.value.latency_us >= 2_900_000
        assert recorder.errors == [None] * 4
        # published as soon as it can be resumed (TLS 1.2: at the handshake; 1.3: when its ticket is read)
        assert COUNTERS.tls_resumed == 3, COUNTERS


def test_missing_client_certificate_says_so(cert_files: tuple[Path, Path], recorder: FakeRecorder) -> None:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, cert_files))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(cert_files[0]))
    with serving(answering(), tls=ctx) as server:  # type: ignore[arg-type]
        factory = ClientFactory(ClientSettings(insecure=True), recorder)
        try:
            r = factory.session(server.url).get("/")
            ok = ClientFactory(ClientSettings(insecure=True, client_cert=str(cert_files[0]),
                                              client_key=str(cert_files[1])), recorder).session(server.url).get("/")
        finally:
            factory.close_all()
        assert r.error is not None and "client certificate" in r.error and "--client-cert" in r.error, r.error
        assert ok.error is None and ok.content == b"ok"
        assert len(server.seen) == 1  # only the request with a certificate got through


@pytest.fixture()
def dual_stack_dns(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """dnsmasq on loopback answering dual.test with A 127.0.0.1 and AAAA ::1 (never the machine's resolver)."""
    from servers import free_udp_tcp_port

    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    port = free_udp_tcp_port()
    proc = subprocess.Popen(
        [binary, "--no-daemon", "--no-resolv", "--no-hosts", f"--port={port}", "--listen-address=127.0.0.1",
         "--bind-interfaces", "--host-record=dual.test,127.0.0.1,::1", f"--pid-file={tmp_path / 'pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    assert proc.poll() is None, "dnsmasq did not start"
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(timeout=5)


def test_refused_first_address_falls_back_to_the_next(dual_stack_dns: tuple[str, int], recorder: FakeRecorder) -> None:
    """dual.test resolves to 127.0.0.1 (refusing) and ::1 (listening): the connect moves on, and counts it."""
    host, dns_port = dual_stack_dns
    port = free_v6_port_with_v4_closed()
    with serving(answering(), host="::1", port=port) as server:
        COUNTERS.reset()
        factory = ClientFactory(ClientSettings(dns_server=f"{host}:{dns_port}", dns_select="first"), recorder)
        try:
            assert factory.dns.lookup("dual.test", port) == ["127.0.0.1", "::1"]
            session = factory.session(f"http://dual.test:{port}", keep_alive=False)
            responses = [session.get(f"/{i}") for i in range(3)]
        finally:
            factory.close_all()
        assert [r.error for r in responses] == [None] * 3
        assert [s.target for s in server.seen] == ["/0", "/1", "/2"]
        assert COUNTERS.connect_fallbacks == 3 and COUNTERS.opened == 3 and COUNTERS.dns_lookups == 1


@contextmanager
def blackhole(host: str, port: int) -> Iterator[None]:
    """A listener on host:port whose accept queue is full: a connect to it gets no answer at all (its SYNs
    are dropped), as with a blackholed route or a silent firewall."""
    import socket

    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.bind((host, port))
    listener.listen(0)
    filler = socket.create_connection((host, port))  # the one place in the queue
    try:
        yield
    finally:
        filler.close()
        listener.close()


def test_a_silent_first_address_costs_250_ms_not_the_connect_timeout(dual_stack_dns: tuple[str, int],
                                                                       recorder: FakeRecorder) -> None:
    """Happy Eyeballs: 127.0.0.1 drops every SYN, ::1 answers; each new connection starts ::1 after 250 ms."""
    host, dns_port = dual_stack_dns
    port = free_v6_port_with_v4_closed()
    with blackhole("127.0.0.1", port), serving(answering(), host="::1", port=port) as server:
        COUNTERS.reset()
        factory = ClientFactory(ClientSettings(dns_server=f"{host}:{dns_port}", dns_select="first",
                                               connect_timeout=5.0), recorder)
        try:
            session = factory.session(f"http://dual.test:{port}", keep_alive=False)
            took = []
            for i in range(3):
                t0 = time.perf_counter()
                took.append((session.get(f"/{i}").error, time.perf_counter() - t0))
        finally:
            factory.close_all()
    assert [error for error, _ in took] == [None] * 3
    assert all(0.2 < seconds < 2.0 for _, seconds in took), took  # sequential tries would wait 5 s each
    assert [s.target for s in server.seen] == ["/0", "/1", "/2"]
    assert COUNTERS.connect_fallbacks == 3 and COUNTERS.opened == 3 and COUNTERS.closed == 3
    connects = [setup[1] for _, _, setup in recorder.phases if setup is not None]
    assert len(connects) == 3 and all(connects) and min(connects) > 200_000  # the 250 ms are connect time


def test_every_address_silent_is_one_connect_timeout(dual_stack_dns: tuple[str, int], recorder: FakeRecorder) -> None:
    host, dns_port = dual_stack_dns
    port = free_v6_port_with_v4_closed()
    with blackhole("127.0.0.1", port), blackhole("::1", port):
        factory = ClientFactory(ClientSettings(dns_server=f"{host}:{dns_port}", connect_timeout=1.0), recorder)
        try:
            t0 = time.perf_counter()
            r = factory.session(f"http://dual.test:{port}").get("/")
            took = time.perf_counter() - t0
        finally:
            factory.close_all()
    assert r.error is not None and r.error.startswith("ConnectTimeout: connect to dual.test"), r.error
    assert 0.9 < took < 1.8  # the connect timeout bounds the whole race, not each address


def test_every_address_refusing_is_one_failure(dual_stack_dns: tuple[str, int], recorder: FakeRecorder) -> None:
    host, dns_port = dual_stack_dns
    port = free_v6_port_with_v4_closed()  # nothing listens on either address
    COUNTERS.reset()
    factory = ClientFactory(ClientSettings(dns_server=f"{host}:{dns_port}"), recorder)
    try:
        r = factory.session(f"http://dual.test:{port}").get("/")
    finally:
        factory.close_all()
    assert r.error is not None and r.error.startswith("ConnectionRefusedError"), r.error
    assert COUNTERS.connect_fallbacks == 1 and COUNTERS.opened == 0


def test_raw_server_is_real() -> None:
    """The misbehaving servers are real sockets: a plain socket sees the same bytes."""
    import socket

    with serving(answering(b"hi")) as server:
        assert isinstance(server, RawServer)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            assert s.recv(1024).endswith(b"\r\n\r\nhi")
        assert [x.target for x in server.seen] == ["/x"]


PACED = """
from loadgen import HttpUser, constant, task

class Paced(HttpUser):
    wait_time = constant({wait})

    @task
    def order(self):
        self.client.post("/order", data=b"one")
"""


@pytest.mark.parametrize("server_idle_close, wait", [(None, 0.05), (0.3, 0.5)])
def test_loadgen_run_under_gevent_patching(tmp_path: Path, server_idle_close: float | None, wait: float) -> None:
    """`loadgen run` patches the standard library: the idle check must still tell a live connection from one
    the server closed (a paced POST every `wait` s, against a server that keeps or closes idle connections)."""
    from conftest import run_loadgen

    (tmp_path / "paced.py").write_text(PACED.format(wait=wait))
    handler = answering() if server_idle_close is None else closes_when_idle(server_idle_close)
    with serving(handler) as server:
        result = run_loadgen(["run", "-f", "paced.py", "-H", server.url, "-u", "5", "-r", "100", "-t", "3s", "-q",
                              "--json", "r.json"], tmp_path)
        seen = list(server.seen)
        connections = server.connections
    report = result.report
    assert result.code == 0 and report is not None, result.stderr
    totals, conns = report["totals"], report["connections"]
    assert totals["failures"] == 0 and conns["retries"] == 0, report["errors"]
    assert totals["requests"] == len(seen) == len([s for s in seen if s.method == "POST"])  # each exactly once
    assert conns["opened"] == connections
    if server_idle_close is None:
        assert connections == 5 and conns["idle_dropped"] == 0  # one kept-alive connection per user
    else:
        assert conns["idle_dropped"] == connections - 5 > 0  # every reuse found the server's close first
