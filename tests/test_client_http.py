"""HttpSession against real loopback servers: keep-alive, framing, failures, redirects."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import gevent
import pytest

from loadgen.client import COUNTERS, ClientFactory, ClientSettings, HTTPError
from loadgen.script.timing import IterationTiming

if TYPE_CHECKING:
    from client_servers import CannedServer, FakeRecorder

pytest_plugins = ["client_servers"]



@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    COUNTERS.reset()


def make(recorder: FakeRecorder, **kw: object) -> ClientFactory:
    return ClientFactory(ClientSettings(**kw), recorder)  # type: ignore[arg-type]


def test_keep_alive_reuses_one_connection(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    for _ in range(100):
        r = s.get("/")
        assert r.status_code == 200 and r.content == b"hello" and r.ok
    assert COUNTERS.opened == 1 and COUNTERS.requests == 100
    assert len(recorder.calls) == 100
    method, name, lat, nbytes, err, q = recorder.calls[0]
    assert (method, name, err, q) == ("GET", "/", None, 0) and lat > 0 and nbytes > 5
    assert COUNTERS.bytes_received == sum(c[3] for c in recorder.calls)
    assert COUNTERS.bytes_sent > 100 * 40
    s.close()
    assert COUNTERS.closed == 1
    f.close_all()


def test_keep_alive_false_opens_one_per_request(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url, keep_alive=False)
    for _ in range(20):
        assert s.get("/").status_code == 200
    assert COUNTERS.opened == 20 and COUNTERS.closed == 20
    _method, _target, raw = http_server.stats.requests[-1]
    assert b"\r\nConnection: close\r\n" in raw
    f.close_all()


def test_chunked_close_delimited_http10_interim_204(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    assert s.get("/chunked").content == b"hello world"
    assert s.get("/").content == b"hello"  # the connection survived the chunked body
    assert COUNTERS.opened == 1
    r = s.get("/close")
    assert r.content == b"until-eof" and r.ok
    assert s.get("/http10").content == b"old-style"
    r = s.get("/interim")
    assert (r.status_code, r.content) == (200, b"final")
    r = s.get("/nocontent")
    assert (r.status_code, r.content, r.ok) == (204, b"", True)
    r = s.head("/cl")
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "5")
    assert s.get("/").content == b"hello"
    assert all(e is None for e in recorder.errors)
    f.close_all()


def test_server_closing_keep_alive_is_retried(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    for _ in range(5):
        assert s.get("/close-after").ok
        gevent.sleep(0.01)  # let the server's FIN arrive
    assert recorder.errors == [None] * 5
    f.close_all()


def test_status_errors_are_failures(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    r = s.get("/status/500")
    assert r.status_code == 500 and not r.ok and r.content == b"status body"
    assert r.error == "HTTPError: 500 Internal Server Error"
    assert recorder.calls[-1][4] == r.error
    with pytest.raises(HTTPError, match="500"):
        r.raise_for_status()
    assert s.get("/status/404").error == "HTTPError: 404 Not Found"
    s.get("/").raise_for_status()
    f.close_all()


def test_refused_and_reset_are_failures(http_server: CannedServer, recorder: FakeRecorder, closed_port: int) -> None:
    f = make(recorder)
    s = f.session(f"http://127.0.0.1:{closed_port}")
    r = s.get("/x", name="refused")
    assert r.status_code == 0 and not r.ok
    assert r.error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert recorder.calls[-1][:2] == ("GET", "refused") and recorder.calls[-1][4] == r.error
    s2 = f.session(http_server.url)
    r = s2.get("/reset")
    assert r.status_code == 0 and r.error is not None
    assert r.error.startswith(("ConnectionResetError", "ConnectionClosed")), r.error
    assert s2.get("/").ok  # the session recovers
    f.close_all()


def test_timeouts_become_failures(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, read_timeout=0.3)
    s = f.session(http_server.url)
    t = gevent.get_hub().loop.now()
    r = s.get("/hang")
    assert r.error == "ReadTimeout: read timed out after 0.3 s"
    r = s.get("/hang", timeout=0.1)
    assert r.error == "ReadTimeout: read timed out after 0.1 s"
    r = s.get("/slow-body", timeout=(1.0, 0.2))
    assert r.error is not None and r.error.startswith("ReadTimeout"), r.error
    assert gevent.get_hub().loop.now() - t < 3
    assert s.get("/").ok
    # connect timeout: a listener whose backlog is full never completes the handshake
    f.close_all()


def test_connect_timeout(recorder: FakeRecorder) -> None:
    import socket

    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue so further SYNs are dropped
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        f = make(recorder, connect_timeout=0.2)
        r = f.session(f"http://127.0.0.1:{port}").get("/")
        assert r.error is not None and r.error.startswith("ConnectTimeout"), r.error
        f.close_all()
    finally:
        for c in fillers:
            c.close()
        lst.close()


def test_redirects(http_server: CannedServer, recorder: FakeRecorder, make_server: Any) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    r = s.get("/redirect/3")
    assert (r.status_code, r.content, r.ok) == (200, b"landed", True)
    assert r.url == f"{http_server.url}/redirect/0"
    assert len(recorder.calls) == 1 and recorder.calls[0][1] == "/redirect/3"
    assert COUNTERS.requests == 4 and COUNTERS.opened == 1
    r = s.get("/redirect/3", allow_redirects=False)
    assert r.status_code == 302 and r.ok and r.headers["location"] == "/redirect/2"
    r = s.get("/redirect/12")
    assert r.error == "TooManyRedirects: more than 10 redirects"
    r = s.post("/see-other", data=b"payload")
    assert r.status_code == 200 and r.content.startswith(b"GET /echo HTTP/1.1\r\n")
    other = make_server()
    r = s.get(f"/goto?url={other.url}/cl", name="goto")
    assert r.content == b"hello" and r.url == f"{other.url}/cl"
    assert other.stats.connections == 1
    f.close_all()


def test_request_encoding(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url + "/")
    s.headers["Authorization"] = "Bearer t0"
    raw = s.post("/echo", json={"a": 1}, headers={"X-Req": "1"}, params={"q": "a b"}).content
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /echo?q=a+b HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:%d" % http_server.port in head
    assert b"\r\nAuthorization: Bearer t0" in head and b"\r\nX-Req: 1" in head
    assert b"\r\nContent-Type: application/json" in head and json.loads(body) == {"a": 1}
    s.headers["Authorization"] = "Bearer t1"  # invalidates the cached head
    head = s.get("/echo").content
    assert b"Bearer t1" in head and b"Content-Length" not in head
    raw = s.put("/echo", data={"k": "v"}).content
    assert raw.endswith(b"\r\n\r\nk=v") and b"application/x-www-form-urlencoded" in raw
    assert b"Content-Length: 0\r\n" in s.put("/echo").content
    assert b"Content-Length: 0\r\n" in s.patch("/echo").content
    assert s.delete("/echo").content.startswith(b"DELETE ")
    assert s.options("/echo").content.startswith(b"OPTIONS ")
    assert s.get(f"{http_server.url}/echo?x=1").content.startswith(b"GET /echo?x=1 ")
    assert s.get("/echo", headers={"User-Agent": None}).content.find(b"User-Agent") < 0
    with pytest.raises(ValueError):
        s.get("/echo", headers={"X-Bad": "a\r\nInjected: 1"})
    f.close_all()


def test_base_path_and_names(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url + "/api")
    r = s.get("/echo", name="echo")
    assert r.status_code == 404  # /api/echo has no route
    _m, target, _raw = http_server.stats.requests[-1]
    assert target == "/api/echo" and recorder.calls[-1][1] == "echo"
    f.close_all()


def test_catch_response(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    with s.get("/status/404", catch_response=True) as r:
        assert recorder.calls == []  # not recorded before __exit__
        r.success()
    assert recorder.calls[-1][4] is None
    with s.get("/", catch_response=True) as r:
        r.failure("wrong content")
    assert recorder.calls[-1][4] == "wrong content"
    with s.get("/status/500", catch_response=True):
        pass
    assert recorder.calls[-1][4] == "HTTPError: 500 Internal Server Error"
    with pytest.raises(KeyError), s.get("/", catch_response=True) as r:
        raise KeyError("missing")
    assert recorder.calls[-1][4] == "KeyError: 'missing'"
    assert len(recorder.calls) == 4
    with pytest.raises(RuntimeError):
        s.get("/").success()
    timing = IterationTiming()
    s = f.session(http_server.url, timing=timing)
    timing.begin_iteration(1234)
    with s.get("/", catch_response=True):
        pass
    assert recorder.calls[-1][5] == 1234 and timing.queued_us == 0
    f.close_all()


def test_queued_us_is_added_once(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    timing = IterationTiming()
    s = f.session(http_server.url, timing=timing)
    timing.begin_iteration(500)
    s.get("/")
    s.get("/")
    assert [c[5] for c in recorder.calls] == [500, 0]
    f.close_all()


def test_big_body_capped_and_counted(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, max_body=100_000)
    s = f.session(http_server.url)
    r = s.get("/big?n=50000")
    assert len(r.content) == 50_000 and not r.truncated
    r = s.get("/big?n=3000000")
    assert len(r.content) == 100_000 and r.truncated and r.ok
    assert r.nbytes > 3_000_000
    assert s.get("/").content == b"hello" and COUNTERS.opened == 1
    f.close_all()


def test_gzip_and_text_json(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    r = s.get("/gzip", headers={"Accept-Encoding": "gzip"})
    assert r.content == b"unzipped text" and r.text == "unzipped text"
    r = s.get("/headers")
    assert r.json() == {"k": "v"} and r.encoding == "utf-8"
    assert r.elapsed.total_seconds() > 0
    f.close_all()


def test_many_concurrent_users(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)

    def user() -> None:
        s = f.session(http_server.url)
        for _ in range(20):
            assert s.get("/").ok
        s.close()

    gevent.joinall([gevent.spawn(user) for _ in range(50)], timeout=20, raise_error=True)
    assert len(recorder.calls) == 1000 and COUNTERS.opened == 50 and COUNTERS.closed == 50
    f.close_all()


def test_shared_pool_bounds_connections(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, pool="shared", pool_size=3)

    def user() -> None:
        s = f.session(http_server.url)
        for _ in range(10):
            assert s.get("/").ok
        s.close()

    gevent.joinall([gevent.spawn(user) for _ in range(20)], timeout=20, raise_error=True)
    assert len(recorder.calls) == 200 and COUNTERS.opened == 3
    assert COUNTERS.closed == 0  # users stopping leaves the shared pool open
    f.close_all()
    assert COUNTERS.closed == 3


def test_close_all_closes_in_use_sockets(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, read_timeout=5.0)
    s = f.session(http_server.url)
    g = gevent.spawn(s.get, "/hang")
    gevent.sleep(0.1)
    f.close_all()
    r = g.get(timeout=3)
    assert r.error is not None and COUNTERS.closed == COUNTERS.opened == 1


def test_killed_user_closes_connection(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    g = gevent.spawn(s.get, "/hang")
    gevent.sleep(0.1)
    g.kill(timeout=2)
    assert COUNTERS.closed == COUNTERS.opened == 1 and recorder.calls == []
    f.close_all()


def test_idle_connections_are_reaped(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, idle_timeout=0.2)
    s = f.session(http_server.url)
    assert s.get("/").ok
    gevent.sleep(0.3)
    assert f.reap_idle() == 1 and COUNTERS.closed == 1
    assert s.get("/").ok and COUNTERS.opened == 2
    f.close_all()


def test_cookies_follow_the_session(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    r = s.post("/login", {"user": "u"})  # data positional, as in requests
    assert r.ok and r.content.startswith(b"GET /echo ")  # 302 after POST becomes GET
    assert b"\r\nCookie: sid=abc123; theme=dark\r\n" in r.content
    assert s.cookies.get("sid", "127.0.0.1") == "abc123"
    assert b"Cookie: sid=abc123; theme=dark" in s.get("/echo").content
    s.get("/logout")
    assert b"\r\nCookie: theme=dark\r\n" in s.get("/echo").content
    s.cookies.set("extra", "1", "127.0.0.1")
    assert b"Cookie: theme=dark; extra=1" in s.get("/echo").content
    other = f.session(http_server.url)  # cookies are per session (per user)
    assert b"Cookie" not in other.get("/echo").content
    f.close_all()


def test_no_base_url_and_bad_redirect(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session("")
    assert s.get(f"{http_server.url}/cl").content == b"hello"
    with pytest.raises(ValueError, match="no base URL"):
        s.get("/cl")
    r = s.get(f"{http_server.url}/goto?url=ftp://example.com/x", name="ftp")
    assert r.error is not None and r.error.startswith("ProtocolError: cannot follow redirect"), r.error
    f.close_all()


def test_slow_dns_is_a_connect_timeout(recorder: FakeRecorder) -> None:
    f = make(recorder, connect_timeout=0.1)

    def slow(host: str, port: int) -> list[str]:
        gevent.sleep(5)
        return ["127.0.0.1"]

    f.dns.resolver = slow
    r = f.session("http://slow.test:1").get("/")
    assert r.error == "ConnectTimeout: DNS lookup of slow.test timed out after 0.1 s"
    f.close_all()


def test_shared_pool_wait_is_bounded(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, pool="shared", pool_size=1, connect_timeout=0.2, read_timeout=2.0)
    a, b = f.session(http_server.url), f.session(http_server.url)
    g = gevent.spawn(a.get, "/hang")
    gevent.sleep(0.05)
    r = b.get("/")
    assert r.error == "PoolTimeout: no free connection in the shared pool of 1 within 0.2 s"
    g.kill()
    assert b.get("/").ok  # the killed request gave its slot back
    f.close_all()


def test_keep_alive_can_be_switched(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder)
    s = f.session(http_server.url)
    s.get("/")
    s.keep_alive = False
    s.get("/")
    s.get("/")
    assert COUNTERS.opened == 2 and b"Connection: close" in http_server.stats.requests[-1][2]
    f.close_all()


def test_mixed_traffic_never_raises(http_server: CannedServer, recorder: FakeRecorder) -> None:
    f = make(recorder, read_timeout=0.05, connect_timeout=1.0)
    routes = ["/", "/chunked", "/close", "/reset", "/hang", "/status/503", "/redirect/2", "/big?n=200000",
              "/interim", "/nocontent", "/close-after", "/http10"]
    done = []

    def user(k: int) -> None:
        s = f.session(http_server.url, keep_alive=k % 3 != 0)
        for i in range(24):
            s.get(routes[(i + k) % len(routes)])
        done.append(k)
        s.close()

    gevent.joinall([gevent.spawn(user, k) for k in range(30)], timeout=30, raise_error=True)
    assert len(done) == 30 and len(recorder.calls) == 30 * 24
    errors = {e.split(":")[0] for e in recorder.errors if e}
    assert errors <= {"ReadTimeout", "ConnectionResetError", "ConnectionClosed", "HTTPError"}, errors
    ok = [c for c in recorder.calls if c[4] is None]
    assert len(ok) >= 30 * 24 * 0.6
    f.close_all()
    assert COUNTERS.opened == COUNTERS.closed
