"""``proxies=`` through a real proxy on loopback (tinyproxy, tests/proxy_server.py).

A plain http request goes to the proxy with its absolute URL; an https one through a CONNECT tunnel, TLS end
to end with the target. Each case checks both ends: the proxy's log (what it was asked) and the target's
(what reached it, with tinyproxy's ``Via``), and compares loadgen with `requests` through the same proxy.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_servers import FakeRecorder, make_cert
from differential import Run, Step, compare, run_loadgen, run_requests, seen_of
from misbehaving import RawServer, answering, serving
from proxy_server import Tinyproxy
from servers import free_port

from loadgen.client import ClientFactory, ClientSettings

USER, SECRET = "load", "s3cret"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    with Tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as p:
        yield p


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    with Tinyproxy(tmp_path_factory.mktemp("tinyproxy-auth"), auth=(USER, SECRET)) as p:
        yield p


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("proxy-tls"))


def tls_server(certs: tuple[Path, Path]) -> RawServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, certs))
    return RawServer(answering(b"secret ok"), tls=ctx)


def via(server: RawServer) -> list[bool]:
    """For each request the target saw: whether it came through tinyproxy."""
    return [any("tinyproxy" in v for v in s.header("via")) for s in server.seen]


def differential(proxy: Tinyproxy, steps: list[Step], tls: tuple[Path, Path] | None = None) -> tuple[Run, Run]:
    runs = []
    for client in ("requests", "loadgen"):
        proxy.clear()
        server = tls_server(tls) if tls else RawServer(answering(b"proxied ok"))
        try:
            if client == "requests":
                outcomes = run_requests(server.url, steps, verify=str(tls[0]) if tls else False)
            else:
                settings = ClientSettings(ca_bundle=str(tls[0]) if tls else None, connect_timeout=5, read_timeout=5)
                outcomes = run_loadgen(server.url, steps, settings)
            lines = proxy.requests(expect=1)
            runs.append((Run(outcomes, seen_of(server.seen), list(server.seen)), lines, via(server), server.port))
        finally:
            server.stop()
    (a, a_lines, a_via, a_port), (b, b_lines, b_via, b_port) = runs
    assert compare(a, b, frozenset()) == []
    # the request lines the proxy got, but their version: urllib3 says CONNECT ... HTTP/1.0, loadgen HTTP/1.1
    assert ([ln.replace(str(a_port), "PORT").rsplit(" ", 1)[0] for ln in a_lines]
            == [ln.replace(str(b_port), "PORT").rsplit(" ", 1)[0] for ln in b_lines])
    assert a_via == b_via
    return a, b


def test_http_goes_to_the_proxy_with_the_absolute_url(proxy: Tinyproxy) -> None:
    proxies = {"http": proxy.url}
    steps = [Step("GET", "/a?x=1", {"proxies": proxies}), Step("POST", "/b", {"proxies": proxies, "data": "hi"}),
             Step("GET", "/direct")]
    requests_run, loadgen_run = differential(proxy, steps)
    assert [o.status for o in loadgen_run.outcomes] == [200, 200, 200]
    assert [(s.method, s.target, s.body) for s in loadgen_run.raw_seen] == [
        ("GET", "/a?x=1", b""), ("POST", "/b", b"hi"), ("GET", "/direct", b"")]


def test_https_tunnels_through_connect_once_per_connection(proxy: Tinyproxy, certs: tuple[Path, Path]) -> None:
    proxies = {"https": proxy.url}
    steps = [Step("GET", f"/s{i}", {"proxies": proxies}) for i in range(5)]
    _, loadgen_run = differential(proxy, steps, tls=certs)
    assert [o.body for o in loadgen_run.outcomes] == [b"secret ok"] * 5
    assert [s.conn for s in loadgen_run.raw_seen] == [1] * 5  # keep-alive inside one tunnel
    proxy.clear()
    server = tls_server(certs)
    recorder = FakeRecorder()
    factory = ClientFactory(ClientSettings(ca_bundle=str(certs[0]), connect_timeout=5, read_timeout=5), recorder)
    try:
        session = factory.session(server.url)
        session.proxies = proxies  # Locust's spelling: the session's, for every request
        assert [session.get(f"/t{i}").status_code for i in range(3)] == [200] * 3
        assert proxy.requests(expect=1) == [f"CONNECT 127.0.0.1:{server.port} HTTP/1.1"]
        assert via(server) == [False] * 3  # a tunnel forwards bytes: the proxy cannot add a header
        (_, _, setup), *_ = recorder.phases
        assert setup is not None and setup[1] > 0 and setup[2] > 0  # connect (with CONNECT), then TLS
        session.proxies.clear()
        proxy.clear()
        assert session.get("/direct").ok and proxy.requests() == []
    finally:
        factory.close_all()
        server.stop()


def test_proxy_credentials(auth_proxy: Tinyproxy, certs: tuple[Path, Path]) -> None:
    good = auth_proxy.url_with(USER, SECRET)
    bad = auth_proxy.url_with(USER, "wrong")
    with serving(answering(b"ok")) as plain:
        server = tls_server(certs)
        recorder = FakeRecorder()
        factory = ClientFactory(ClientSettings(ca_bundle=str(certs[0]), connect_timeout=5, read_timeout=5), recorder)
        try:
            session = factory.session("")
            ok_http = session.get(plain.url + "/p", proxies={"http": good})
            ok_https = session.get(server.url + "/p", proxies={"https": good})
            bad_http = session.get(plain.url + "/p", proxies={"http": bad})
            bad_https = session.get(server.url + "/p", proxies={"https": bad})
        finally:
            factory.close_all()
            server.stop()
    assert ok_http.status_code == ok_https.status_code == 200
    # tinyproxy 1.11 answers wrong credentials with 401 (not 407): the proxy's answer is the response
    assert bad_http.status_code == 401 and bad_http.error == "HTTPError: 401 Unauthorized"
    assert bad_https.status_code == 0 and bad_https.error is not None
    assert bad_https.error.startswith("ProxyError: the proxy refused the tunnel: 'HTTP/1.0 401 Unauthorized'")
    assert len(plain.seen) == 1 and len(server.seen) == 1  # what the proxy refused never reached a target
    assert "Proxy-Authorization" not in str(plain.seen[0].headers)  # the proxy keeps its credentials


def test_no_proxy_and_other_keys(proxy: Tinyproxy) -> None:
    with serving(answering()) as server:
        factory = ClientFactory(ClientSettings(connect_timeout=5, read_timeout=5), FakeRecorder())
        try:
            session = factory.session(server.url)
            proxy.clear()
            assert session.get("/1", proxies={"all": proxy.url}).ok
            assert session.get("/2", proxies={"http://127.0.0.1": proxy.url, "http": "http://127.0.0.1:9"}).ok
            assert session.get("/3", proxies={"http": proxy.url, "no_proxy": "localhost,127.0.0.0/8"}).ok
            assert session.get("/4", proxies={"http": proxy.url, "no_proxy": f"127.0.0.1:{server.port}"}).ok
            assert session.get("/5", proxies={"https": proxy.url}).ok  # no proxy for http
            lines = proxy.requests(expect=2)
        finally:
            factory.close_all()
    assert [ln.split()[1].rsplit("/", 1)[1] for ln in lines] == ["1", "2"]
    assert via(server) == [True, True, False, False, False]


def test_an_unreachable_proxy_is_a_recorded_failure() -> None:
    recorder = FakeRecorder()
    factory = ClientFactory(ClientSettings(connect_timeout=2, read_timeout=2), recorder)
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        r = factory.session("http://127.0.0.1:9").get("/", proxies={"http": dead})
    finally:
        factory.close_all()
    assert r.status_code == 0 and r.error is not None
    assert r.error.startswith(f"ProxyError: cannot connect to proxy {dead}: ConnectionRefusedError")
    assert recorder.errors == [r.error]


@pytest.mark.parametrize("url, message", [
    ("https://127.0.0.1:3128", "only http:// proxies are supported"),
    ("socks5://127.0.0.1:1080", "only http:// proxies are supported"),
])
def test_unsupported_proxies_are_refused_with_the_fix(url: str, message: str) -> None:
    factory = ClientFactory(ClientSettings(), FakeRecorder())
    try:
        with pytest.raises(ValueError, match=message):
            factory.session("http://127.0.0.1:9").get("/", proxies={"http": url})
    finally:
        factory.close_all()


def test_a_stream_through_the_proxy(proxy: Tinyproxy) -> None:
    def handler(peer: Any) -> None:
        if peer.read_request() is not None:
            peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nline\n\r\n5\r\nmore\n\r\n0\r\n\r\n")

    with serving(handler) as server:
        factory = ClientFactory(ClientSettings(connect_timeout=5, read_timeout=5), FakeRecorder())
        try:
            r = factory.session(server.url).get("/s", stream=True, proxies={"http": proxy.url})
            assert list(r.iter_lines()) == [b"line", b"more"]
        finally:
            factory.close_all()
    assert via(server) == [True]


@pytest.mark.parametrize("host, port, no_proxy, expected", [
    ("api.example.com", 443, "example.com", True),
    ("api.example.com", 443, ".example.com", True),
    ("example.com.evil", 443, "example.com", False),
    ("badexample.com", 443, "example.com", False),
    ("10.1.2.3", 80, "10.0.0.0/8", True),
    ("11.1.2.3", 80, "10.0.0.0/8", False),
    ("127.0.0.1", 8080, "127.0.0.1:8080", True),
    ("127.0.0.1", 8081, "127.0.0.1:8080", False),
    ("anything", 1, "*", True),
    ("host", 1, "", False),
    ("host", 1, " a , host ", True),
])
def test_no_proxy_rules(host: str, port: int, no_proxy: str, expected: bool) -> None:
    from loadgen.client.proxies import bypassed

    assert bypassed(host, port, no_proxy) is expected


def test_proxy_choice_follows_requests_key_order() -> None:
    from loadgen.client.proxies import proxy_for

    proxies = {"https://api": "http://a:1", "https": "http://b:2", "all://api": "http://c:3", "all": "http://d:4"}
    assert proxy_for("https", "api", 443, proxies).url == "http://a:1"  # type: ignore[union-attr]
    assert proxy_for("https", "web", 443, proxies).url == "http://b:2"  # type: ignore[union-attr]
    assert proxy_for("http", "api", 80, proxies).url == "http://c:3"  # type: ignore[union-attr]
    assert proxy_for("http", "web", 80, proxies).url == "http://d:4"  # type: ignore[union-attr]
    assert proxy_for("http", "web", 80, {"https": "http://b:2"}) is None
    assert proxy_for("http", "web", 80, {"http": "u:p@px:8"}).authorization == "Basic dTpw"  # type: ignore[union-attr]
