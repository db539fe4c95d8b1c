"""HTTPS: verification, one shared SSLContext, session resumption, client certificates, ALPN."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
import pytest
from gevent import ssl

from loadgen.client import COUNTERS, ClientFactory, ClientSettings, get_context

if TYPE_CHECKING:
    from client_servers import CannedServer, FakeRecorder

pytest_plugins = ["client_servers"]


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    COUNTERS.reset()


def test_verification_on_by_default(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    f = ClientFactory(ClientSettings(), recorder)
    r = f.session(tls_server.url).get("/")
    assert r.status_code == 0 and r.error is not None
    assert r.error.startswith("SSLCertVerificationError: "), r.error
    assert "self-signed" in r.error or "self signed" in r.error
    assert f.ssl_context.verify_mode == ssl.CERT_REQUIRED and f.ssl_context.check_hostname
    f.close_all()


def test_ca_bundle_and_insecure(tls_server: CannedServer, recorder: FakeRecorder, tls_files: tuple[Path, Path]) -> None:
    f = ClientFactory(ClientSettings(ca_bundle=str(tls_files[0])), recorder)
    s = f.session(tls_server.url)
    r = s.get("/")
    assert r.ok and r.content == b"hello"
    r = f.session(f"https://localhost:{tls_server.port}").get("/")  # SAN DNS name
    assert r.ok, r.error
    f.close_all()
    f2 = ClientFactory(ClientSettings(insecure=True), recorder)
    assert f2.session(tls_server.url).get("/").ok
    assert f2.ssl_context.verify_mode == ssl.CERT_NONE
    f2.close_all()


def test_keep_alive_over_tls_and_alpn(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    f = ClientFactory(ClientSettings(insecure=True), recorder)
    s = f.session(tls_server.url)
    for _ in range(100):
        assert s.get("/").ok
    assert s.get("/chunked").content == b"hello world"
    assert COUNTERS.opened == 1 and COUNTERS.tls_full + COUNTERS.tls_resumed == 1
    conn = next(iter(f.connections))
    assert isinstance(conn.sock, ssl.SSLSocket)
    assert conn.sock.context is f.ssl_context
    f.close_all()


def test_one_context_for_a_thousand_sessions(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    settings = ClientSettings(insecure=True)
    f = ClientFactory(settings, recorder)
    sessions = [f.session(tls_server.url) for _ in range(1000)]

    def user(s: Any) -> None:
        assert s.get("/").ok

    gevent.joinall([gevent.spawn(user, s) for s in sessions], timeout=30, raise_error=True)
    ctxs = {id(c.sock.context) for c in f.connections}
    assert ctxs == {id(f.ssl_context)} and len(f.connections) == 1000
    assert ClientFactory(settings, recorder).ssl_context is f.ssl_context  # process-wide
    assert get_context(ClientSettings(insecure=True, pool="shared")) is f.ssl_context
    assert get_context(ClientSettings()) is not f.ssl_context  # another TLS configuration
    assert COUNTERS.opened == 1000 and COUNTERS.tls_resumed >= 900
    f.close_all()


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
def test_session_resumption_on_reconnect(make_server: Any, recorder: FakeRecorder, version: str) -> None:
    srv = make_server(tls=True, maximum_version=getattr(ssl.TLSVersion, version))
    f = ClientFactory(ClientSettings(insecure=True), recorder)
    s = f.session(srv.url, keep_alive=False)
    n = 50
    for _ in range(n):
        assert s.get("/").ok
    assert COUNTERS.opened == n
    assert COUNTERS.tls_full == 1 and COUNTERS.tls_resumed == n - 1
    assert srv.stats.tls_resumed >= 0.9 * n and srv.stats.tls_resumed == COUNTERS.tls_resumed
    f.close_all()


def test_tls_resume_off(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    f = ClientFactory(ClientSettings(insecure=True, tls_resume=False), recorder)
    s = f.session(tls_server.url, keep_alive=False)
    for _ in range(10):
        assert s.get("/").ok
    assert COUNTERS.tls_full == 10 and COUNTERS.tls_resumed == 0
    f.close_all()


def test_client_certificate(make_server: Any, recorder: FakeRecorder, tls_files: tuple[Path, Path]) -> None:
    cert, key = map(str, tls_files)
    srv = make_server(tls=True)
    srv.ssl_context.verify_mode = ssl.CERT_REQUIRED
    srv.ssl_context.load_verify_locations(cert)
    f = ClientFactory(ClientSettings(ca_bundle=cert, client_cert=cert, client_key=key), recorder)
    r = f.session(srv.url).get("/")
    assert r.ok, r.error
    f.close_all()
    f2 = ClientFactory(ClientSettings(ca_bundle=cert), recorder)
    r = f2.session(srv.url).get("/")
    assert not r.ok and r.error is not None  # TLS 1.3 reports the missing cert at the first read
    f2.close_all()


def test_plain_http_to_tls_port_fails_cleanly(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    f = ClientFactory(ClientSettings(read_timeout=2), recorder)
    r = f.session(f"http://127.0.0.1:{tls_server.port}").get("/")
    assert r.status_code == 0 and r.error is not None
    f.close_all()


def test_tls_read_timeout(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    f = ClientFactory(ClientSettings(insecure=True, read_timeout=0.2), recorder)
    s = f.session(tls_server.url)
    assert s.get("/").ok
    r = s.get("/hang")
    assert r.error == "ReadTimeout: read timed out after 0.2 s"
    assert s.get("/").ok and COUNTERS.opened == 2
    f.close_all()


def test_mixed_tls_traffic_never_raises(tls_server: CannedServer, recorder: FakeRecorder) -> None:
    f = ClientFactory(ClientSettings(insecure=True, read_timeout=0.05), recorder)
    routes = ["/", "/chunked", "/close", "/reset", "/hang", "/status/500", "/redirect/1", "/big?n=100000"]

    def user(k: int) -> None:
        s = f.session(tls_server.url, keep_alive=k % 2 == 0)
        for i in range(16):
            s.get(routes[(i + k) % len(routes)])
        s.close()

    gevent.joinall([gevent.spawn(user, k) for k in range(20)], timeout=30, raise_error=True)
    assert len(recorder.calls) == 20 * 16
    errors = {e.split(":")[0] for e in recorder.errors if e}
    assert errors <= {"ReadTimeout", "ConnectionResetError", "ConnectionClosed", "HTTPError", "SSLEOFError",
                      "SSLZeroReturnError"}, errors
    f.close_all()
    assert COUNTERS.opened == COUNTERS.closed


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
def test_sessions_resume_through_native_copies_and_through_cpython_ones(
        make_server: Any, recorder: FakeRecorder, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The native path (OpenSSL's own session copy, no re-decoding) is on here, and resumes exactly as the
    CPython path does; both counted by the server."""
    from loadgen.client import native_sessions

    srv = make_server(tls=True, maximum_version=getattr(ssl.TLSVersion, version))
    get_context(ClientSettings(insecure=True))
    assert native_sessions.enabled()  # CPython 3.8-3.14 with its usual layout: the self-test passed
    for native in (True, False):
        monkeypatch.setattr(native_sessions, "_state", native)
        COUNTERS.reset()
        before = srv.stats.tls_resumed
        f = ClientFactory(ClientSettings(insecure=True), recorder)
        s = f.session(srv.url, keep_alive=False)
        for _ in range(20):
            assert s.get("/").ok
        assert COUNTERS.tls_full == 1 and COUNTERS.tls_resumed == 19, native
        assert srv.stats.tls_resumed - before == 19, native
        f.close_all()


def test_tls_max_caps_the_version_offered(make_server: Any, recorder: FakeRecorder) -> None:
    srv = make_server(tls=True)
    capped = get_context(ClientSettings(insecure=True, tls_max="1.2"))
    assert capped.maximum_version == ssl.TLSVersion.TLSv1_2
    assert capped is not get_context(ClientSettings(insecure=True))  # its own context
    f = ClientFactory(ClientSettings(insecure=True, tls_max="1.2"), recorder)
    s = f.session(srv.url, keep_alive=False)
    for _ in range(10):
        assert s.get("/").ok
    assert COUNTERS.tls_full == 1 and COUNTERS.tls_resumed == 9
    kept = f.session(srv.url)  # keep-alive: its pooled connection shows what was negotiated
    assert kept.get("/").ok
    assert kept._pool._idle[0].sock.version() == "TLSv1.2"
    f.close_all()
