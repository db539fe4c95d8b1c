"""Smoke tests of the real servers in ``real_servers`` (uvicorn, hypercorn, gunicorn sync and gevent, httpbin,
nginx): each starts, records a GET and a POST as ``requests`` sent them, and closes an idle keep-alive
connection when its default keep-alive timeout says so (measured on a raw socket)."""

from __future__ import annotations

import base64
import time

import pytest
import requests

# real_servers is also this file's plugin (pytest_plugins below): have pytest rewrite its asserts when the
# import below loads it, instead of warning that it was imported before it could
pytest.register_assert_rewrite("real_servers")

from real_servers import (  # noqa: E402
    ALL_SERVERS,
    Httpbin,
    Nginx,
    RawConnection,
    RealServer,
    record_body,
    record_header,
    server_fixture,
)

pytest_plugins = ["real_servers"]

TIMEOUT = 5.0  # every request of this file
BODY = b"hello \x00\xff world\n"  # not UTF-8, so a decode anywhere shows
GET_PATH = "/smoke/get?x=1&y=a%20b&y=c"
POST_PATH = "/smoke/post?k=v"


# ---- echo servers: what requests sent is what the server saw ---------------------------------------------
def test_get_and_post_are_recorded_as_sent(echo_server: RealServer) -> None:
    echo_server.clear()
    get = requests.get(echo_server.url + GET_PATH, headers={"X-Probe": "one"}, timeout=TIMEOUT)
    post = requests.post(echo_server.url + POST_PATH, data=BODY,
                         headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT)
    assert (get.status_code, post.status_code) == (200, 200)
    assert get.headers["content-type"] == "application/json"

    seen = echo_server.seen()
    assert [(r["method"], r["path"]) for r in seen] == [("GET", GET_PATH), ("POST", POST_PATH)]
    got, posted = seen
    assert {r["server"] for r in seen} == {echo_server.echo_name}
    assert record_body(got) == b"" and record_body(posted) == BODY and posted["body_len"] == len(BODY)
    assert record_header(got, "x-probe") == ["one"]
    assert record_header(posted, "content-length") == [str(len(BODY))]
    assert record_header(posted, "content-type") == ["application/octet-stream"]
    assert record_header(got, "host") == [echo_server.url.removeprefix("http://")]
    assert got["http_version"] == "1.1"
    # the response is the record (nginx's request id header is still in it: the upstream answered it)
    answered = post.json()
    assert (answered["method"], answered["path"], answered["body_b64"]) == ("POST", POST_PATH,
                                                                          base64.b64encode(BODY).decode())
    if isinstance(echo_server, Nginx):  # nginx's own view: the request line exactly as the client sent it
        assert [r["nginx"]["request"] for r in seen] == [f"GET {GET_PATH} HTTP/1.1", f"POST {POST_PATH} HTTP/1.1"]
        assert [r["nginx"]["status"] for r in seen] == [200, 200]
        assert all(Nginx.REQUEST_ID_HEADER not in dict(r["headers"]) for r in seen)
    else:  # headers in the order sent (requests puts its defaults first, then ours)
        names = [k for k, _ in got["headers"]]
        assert names.index("user-agent") < names.index("x-probe")


def test_echo_routes(echo_server: RealServer) -> None:
    url = echo_server.url
    assert requests.get(url + "/status/418", timeout=TIMEOUT).status_code == 418
    assert requests.get(url + "/status/204", timeout=TIMEOUT).content == b""

    zipped = requests.get(url + "/gzip", headers={"Accept-Encoding": "gzip"}, timeout=TIMEOUT)
    assert zipped.headers.get("content-encoding") == "gzip" and zipped.json()["path"] == "/gzip"
    plain = requests.get(url + "/gzip", headers={"Accept-Encoding": "identity"}, timeout=TIMEOUT)
    assert "content-encoding" not in plain.headers and plain.json()["path"] == "/gzip"

    moved = requests.get(url + "/redirect?to=/landed&code=307", allow_redirects=False, timeout=TIMEOUT)
    assert (moved.status_code, moved.headers["location"]) == (307, "/landed")

    cookies = requests.get(url + "/set-cookie?a=1&b=2", timeout=TIMEOUT).cookies
    assert (cookies.get("a"), cookies.get("b")) == ("1", "2")

    start = time.monotonic()
    assert requests.get(url + "/sleep?s=0.3", timeout=TIMEOUT).status_code == 200
    assert time.monotonic() - start >= 0.3

    with requests.get(url + "/stream?n=3&delay=0.05", stream=True, timeout=TIMEOUT) as streamed:
        assert streamed.headers.get("transfer-encoding") == "chunked"
        assert [line for line in streamed.iter_lines() if line] == [
            b'{"chunk": %d, "of": 3}' % i for i in range(3)]

    head = requests.head(url + "/head", timeout=TIMEOUT)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


# ---- httpbin: its own routes -------------------------------------------------------------------------------
def test_httpbin_get_and_post_are_answered_and_logged(httpbin_server: Httpbin) -> None:
    httpbin_server.clear()
    url = httpbin_server.url
    get = requests.get(url + "/anything" + GET_PATH, headers={"X-Probe": "one"}, timeout=TIMEOUT)
    post = requests.post(url + "/anything" + POST_PATH, data=BODY,
                         headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT)
    assert (get.status_code, post.status_code) == (200, 200)
    got, posted = get.json(), post.json()
    assert (got["method"], got["args"], got["headers"]["X-Probe"]) == ("GET", {"x": "1", "y": ["a b", "c"]}, "one")
    assert posted["method"] == "POST" and posted["args"] == {"k": "v"}
    assert posted["data"] == "data:application/octet-stream;base64," + base64.b64encode(BODY).decode()
    assert posted["headers"]["Content-Length"] == str(len(BODY))

    seen = httpbin_server.seen(expect=2)  # gunicorn's access log, written after the response
    assert [(r["method"], r["path"], r["status"]) for r in seen] == [
        ("GET", "/anything" + GET_PATH, 200), ("POST", "/anything" + POST_PATH, 200)]


# ---- keep-alive: closed by the server after its default idle timeout ---------------------------------------
MAX_WAIT = 10.0  # keep-alive timeouts above this (nginx's 75 s) are not waited for in this file


@pytest.mark.parametrize("key", [k for k in ALL_SERVERS if k != "nginx"])
def test_idle_keep_alive_connection_is_closed_after_the_default_timeout(key: str,
                                                                        request: pytest.FixtureRequest) -> None:
    server = server_fixture(request, key)
    timeout = server.keep_alive_timeout
    path = "/get" if isinstance(server, Httpbin) else "/keep-alive"
    with RawConnection(server.url) as conn:
        response = conn.get(path)
        assert response.status == 200
        if timeout is None:  # gunicorn's sync worker: no keep-alive at all
            assert response.headers.get("connection", "").lower() == "close"
            closed_after = conn.wait_close(3.0)
            assert closed_after is not None and closed_after < 1.0, closed_after
            return
        assert timeout <= MAX_WAIT
        assert response.headers.get("connection", "keep-alive").lower() != "close"
        closed_after = conn.wait_close(timeout + 3.0)
    assert closed_after is not None, f"{server.name} kept an idle connection open for more than {timeout + 3}s"
    assert timeout - 0.5 <= closed_after <= timeout + 3.0, (server.name, timeout, closed_after)


def test_nginx_keeps_an_idle_connection_and_serves_it_again(nginx_server: Nginx) -> None:
    """nginx's default (75 s) is longer than this file may take: check instead that a connection idle for
    longer than gunicorn's keep-alive (2 s; its sync upstream has none) is still open and serves a second
    request, and that nginx logged both on one connection."""
    assert nginx_server.keep_alive_timeout == 75.0
    nginx_server.clear()
    with RawConnection(nginx_server.url) as conn:
        assert conn.get("/first").status == 200
        assert conn.wait_close(2.5) is None, "nginx closed an idle connection before its 75 s default"
        assert conn.get("/second").status == 200
    seen = nginx_server.seen()
    assert [r["path"] for r in seen] == ["/first", "/second"]
    assert len({r["nginx"]["connection"] for r in seen}) == 1
    assert [r["nginx"]["connection_requests"] for r in seen] == [1, 2]
    assert len({tuple(r["client"]) for r in seen}) == 2  # two upstream connections: the sync worker closes each
    assert {r["nginx"]["connection_header"] for r in seen} == {"keep-alive"}


@pytest.mark.parametrize("key", ALL_SERVERS)
def test_server_tail_is_quiet(key: str, request: pytest.FixtureRequest) -> None:
    """Nothing in the server's output (at log level warning) after the requests above."""
    server = server_fixture(request, key)
    assert "Traceback" not in server.output_tail(20000), server.output_tail()
