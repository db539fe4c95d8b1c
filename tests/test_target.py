"""End-to-end tests of ``loadgen target`` (run as a subprocess) and of the nginx helper."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from servers import (
    NGINX_BODY,
    client_context,
    connection,
    reset_target,
    start_nginx,
    start_target,
    stop_process,
    target_factory,  # noqa: F401 - pytest fixture
    target_stats,
)

from loadgen.target.protocol import BadRequest, parse_head


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("target") / "access.log"
    proc, url = start_target(access_log=log)
    yield url, log
    assert stop_process(proc) == 0  # SIGTERM exits cleanly


@pytest.fixture
def url(plain: tuple[str, Path]) -> str:
    reset_target(plain[0])
    return plain[0]


@pytest.fixture(scope="module")
def tls_url() -> Iterator[str]:
    proc, url = start_target(tls=True)
    yield url
    assert stop_process(proc) == 0


def get(url: str, path: str, method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    conn = connection(url)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def raw(url: str, data: bytes, timeout: float = 3.0) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    sock.sendall(data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    for _ in range(10_000):
        try:
            data = sock.recv(65536)
        except ConnectionResetError:  # the server closed with unread input (e.g. plain HTTP on TLS)
            break
        if not data:
            break
        chunks.append(data)
    sock.close()
    return b"".join(chunks)


# ---- endpoints ----------------------------------------------------------------------------------------------
def test_root_and_404(url: str) -> None:
    resp, body = get(url, "/")
    assert resp.status == 200 and body == b"Hello from loadgen target\n"
    assert get(url, "/nope")[0].status == 404
    assert get(url, "/status")[0].status == 404
    assert get(url, "/echo/x")[0].status == 404


@pytest.mark.parametrize("code", [201, 204, 304, 418, 503])
def test_status(url: str, code: int) -> None:
    resp, body = get(url, f"/status/{code}")
    assert resp.status == code
    assert body == (b"" if code in (204, 304) else b"status %d\n" % code)


def test_bad_arguments(url: str) -> None:
    for path in ("/status/99", "/status/abc", "/bytes/-1", f"/bytes/{100 * 1024 * 1024 + 1}", "/redirect/x"):
        assert get(url, path)[0].status == 400, path


def test_delay(url: str) -> None:
    t0 = time.monotonic()
    resp, _ = get(url, "/delay/200")
    assert resp.status == 200 and 0.19 <= time.monotonic() - t0 < 2


@pytest.mark.parametrize("n", [0, 10, 65536, 300_001])
def test_bytes(url: str, n: int) -> None:
    resp, body = get(url, f"/bytes/{n}")
    assert resp.status == 200 and len(body) == n and int(resp.headers["Content-Length"]) == n


def test_head_has_no_body(url: str) -> None:
    sock = raw(url, b"HEAD /bytes/100000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(sock)
    assert data.startswith(b"HTTP/1.1 200") and b"Content-Length: 100000\r\n" in data and data.endswith(b"\r\n\r\n")


def test_echo(url: str) -> None:
    resp, body = get(url, "/echo?a=1", method="POST", body=b'{"x": 1}', headers={"X-Test": "yes"})
    doc = json.loads(body)
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    assert doc["method"] == "POST" and doc["path"] == "/echo?a=1" and doc["body"] == '{"x": 1}'
    assert doc["headers"]["X-Test"] == "yes"


def test_chunked_request_body(url: str) -> None:
    req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
           b"POST /status/201 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"3\r\nabc\r\n0\r\n\r\n")
    data = read_all(raw(url, req))
    assert b'"body": "hello world"' in data
    assert data.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 201 Created" in data


def test_content_length_body_discarded_and_keepalive(url: str) -> None:
    conn = connection(url)
    for _ in range(3):
        conn.request("POST", "/", body=b"z" * 200_000)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"Hello from loadgen target\n"
    conn.close()
    stats = target_stats(url)
    assert stats["connections"] == 1 and stats["requests"] == 3


def test_expect_continue(url: str) -> None:
    sock = raw(url, b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
                    b"Connection: close\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(b"ok")
    assert b'"body": "ok"' in read_all(sock)


def test_redirect_chain(url: str) -> None:
    path, hops = "/redirect/3", 0
    for _ in range(10):
        resp, _ = get(url, path)
        if resp.status != 302:
            break
        path, hops = resp.headers["Location"], hops + 1
    assert (hops, path, resp.status) == (3, "/", 200)


def test_chunked_response(url: str) -> None:
    resp, body = get(url, "/chunked/250")
    assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
    assert body == b"".join(b"chunk %d\n" % i for i in range(250))
    data = read_all(raw(url, b"GET /chunked/2 HTTP/1.0\r\n\r\n"))  # 1.0: plain body, then close
    assert b"Transfer-Encoding" not in data and data.endswith(b"\r\n\r\nchunk 0\nchunk 1\n")


def test_close_endpoint(url: str) -> None:
    sock = raw(url, b"GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_all(sock)  # returns only because the server closes
    assert data.count(b"HTTP/1.1 ") == 1 and b"Connection: close\r\n" in data


def test_bad_request(url: str) -> None:
    assert read_all(raw(url, b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    assert read_all(raw(url, b"GET / HTTP/2.0\r\n\r\n")).startswith(b"HTTP/1.1 505 ")
    assert read_all(raw(url, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")).startswith(b"HTTP/1.1 400 ")


# ---- connection handling ------------------------------------------------------------------------------------
def test_keep_alive_pipelining_and_connection_close(url: str) -> None:
    sock = raw(url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5 + b"GET /status/202 HTTP/1.1\r\nConnection: close\r\n\r\n")
    data = read_all(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 5 and data.count(b"HTTP/1.1 202 ") == 1
    stats = target_stats(url)
    assert stats["connections"] == 1 and stats["requests"] == 6
    assert stats["by_path"] == {"/": 5, "/status/202": 1}


def test_http10(url: str) -> None:
    data = read_all(raw(url, b"GET / HTTP/1.0\r\n\r\n"))  # closes by default
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data
    sock = raw(url, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Connection: keep-alive" in sock.recv(1000)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert read_all(sock).startswith(b"HTTP/1.1 200")
    assert target_stats(url)["connections"] == 2


def test_stall(url: str) -> None:
    sock = raw(url, b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n", timeout=0.5)
    with pytest.raises(socket.timeout):
        sock.recv(100)
    stats = target_stats(url)
    assert stats["in_flight"] == 1 and stats["by_path"] == {"/stall": 1}
    sock.close()
    for _ in range(100):
        if target_stats(url)["in_flight"] == 0:
            break
        time.sleep(0.02)
    assert target_stats(url)["in_flight"] == 0


def test_counters_and_reset(url: str) -> None:
    for path in ("/", "/", "/status/500", "/bytes/3"):
        get(url, path)
    stats = target_stats(url)
    assert stats["requests"] == 4 and stats["connections"] == 4 and stats["in_flight"] == 0
    assert stats["by_path"] == {"/": 2, "/status/500": 1, "/bytes/3": 1}
    reset_target(url)
    stats = target_stats(url)
    assert stats["requests"] == 0 and stats["connections"] == 0 and stats["by_path"] == {}
    assert get(url, "/__reset")[0].status == 405 and get(url, "/__stats", "POST")[0].status == 405


def test_access_log(url: str, plain: tuple[str, Path]) -> None:
    log = plain[1]
    before = log.read_text().count("\n")
    read_all(raw(url, b"GET /status/404 HTTP/1.1\r\n\r\nGET /?q=1 HTTP/1.1\r\nConnection: close\r\n\r\n"))
    lines = log.read_text().splitlines()[before:]
    assert len(lines) == 2
    first, second = (line.split() for line in lines)
    assert first[:4] == ["GET", "/status/404", "404", "-"] and second[:4] == ["GET", "/?q=1", "200", "-"]
    assert first[4] == second[4] and (first[5], second[5]) == ("1", "2")  # same connection, request 1 and 2


# ---- TLS ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version,tickets", [(ssl.TLSVersion.TLSv1_3, True), (ssl.TLSVersion.TLSv1_2, True),
                                             (ssl.TLSVersion.TLSv1_2, False)])
def test_tls_resumption(tls_url: str, version: ssl.TLSVersion, tickets: bool) -> None:
    reset_target(tls_url)
    ctx = client_context()
    ctx.maximum_version = version
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET  # TLS 1.2 session ids (server session cache)
    parts = urlsplit(tls_url)
    session, reused = None, []
    for _ in range(3):
        with ctx.wrap_socket(socket.create_connection((parts.hostname, parts.port), timeout=3),
                             server_hostname="localhost", session=session) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")  # reading also receives 1.3 tickets
            assert sock.version() == version.name.replace("v1_", "v1.")
            reused.append(sock.session_reused)
            session = sock.session
    assert reused == [False, True, True]
    stats = target_stats(tls_url)
    assert (stats["connections"], stats["tls_handshakes"], stats["tls_resumed"], stats["requests"]) == (3, 3, 2, 3)


def test_tls_http_client_keep_alive(tls_url: str) -> None:
    reset_target(tls_url)
    conn = connection(tls_url)
    for path in ("/", "/bytes/100000", "/chunked/3"):
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read()
    conn.close()
    assert target_stats(tls_url)["connections"] == 1


def test_tls_bad_handshake_counted(tls_url: str) -> None:
    reset_target(tls_url)
    read_all(raw(tls_url, b"GET / HTTP/1.1\r\n\r\n"))  # plain HTTP on the TLS port
    assert target_stats(tls_url)["tls_failed"] == 1


# ---- processes ----------------------------------------------------------------------------------------------
def test_two_processes(target_factory: Callable[..., tuple[subprocess.Popen[bytes], str]]) -> None:  # noqa: F811
    proc, url = target_factory(processes=2)
    pids = set()
    for _ in range(40):
        resp, body = get(url, "/")
        assert resp.status == 200
        pids.add(target_stats(url)["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2  # each process answers its own /__stats; the kernel spreads connections
    assert stop_process(proc) == 0


# ---- parser unit tests and nginx helper ---------------------------------------------------------------------
def test_parse_head() -> None:
    req = parse_head(b"GET /a?b HTTP/1.1\r\nHost: x\r\nconnection: Close\r\nContent-Length: 12")
    assert (req.path, req.keep_alive, req.length, req.chunked) == (b"/a", False, 12, False)
    assert parse_head(b"GET / HTTP/1.0").keep_alive is False
    assert parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked").chunked
    with pytest.raises(BadRequest):
        parse_head(b"GET  / HTTP/1.1")


def test_nginx_helper(tmp_path: Path) -> None:
    proc, http_url, https_url, log = start_nginx(tmp_path)
    try:
        resp, body = get(http_url, "/")
        assert resp.status == 200 and body == NGINX_BODY.encode() and len(body) == 100
        parts = urlsplit(https_url)
        ctx, session, reused = client_context(), None, []
        for _ in range(2):
            with ctx.wrap_socket(socket.create_connection((parts.hostname, parts.port), timeout=3),
                                 server_hostname="localhost", session=session) as sock:
                sock.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")
                reused.append(sock.session_reused)
                session = sock.session
        assert reused == [False, True]
    finally:
        stop_process(proc)
    fields = [line.split() for line in Path(log).read_text().splitlines()]
    assert [f[:4] for f in fields] == [["GET", "/", "200", "-"], ["GET", "/x", "200", "."], ["GET", "/x", "200", "r"]]
    assert all(f[5] == "1" for f in fields)
