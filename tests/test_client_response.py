"""Response object (lazy headers, catch_response API) and response framing over real sockets."""

from __future__ import annotations

import gzip

import gevent
import pytest
from gevent import socket
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.client import Headers, Origin, ProtocolError, Response
from loadgen.client.connection import Connection
from loadgen.client.http11 import TRUNCATED

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-TYPE: text/html; charset=ISO-8859-1\r\nX-Multi: a\r\n"
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nx-multi: b\r\nX-Folded: one\r\n two\r\nContent-Length: 3"
)


def test_headers_parsed_lazily_and_case_insensitive() -> None:
    r = Response(200, HEAD, "é!!".encode("latin-1"), 1500, 100, None, "http://h", "/p")
    assert r._headers is None  # nothing parsed until read
    assert r.ok and r.url == "http://h/p" and r.elapsed.total_seconds() == 0.0015
    h = r.headers
    assert r._headers is h and r.headers is h
    assert h["content-type"] == h["Content-Type"] == "text/html; charset=ISO-8859-1"
    assert h["x-multi"] == "a, b" and h.get_all("set-cookie") == ["a=1", "b=2"]
    assert h["X-FOLDED"] == "one two" and "content-length" in h and "nope" not in h
    assert h.get("nope", "d") == "d" and len(h) == 5
    assert list(h)[0] == "content-TYPE"
    assert r.encoding == "ISO-8859-1" and r.text == "é!!" and r.reason == "OK"


def test_response_helpers() -> None:
    body = gzip.compress(b'{"x": [1, 2]}')
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json"
    r = Response(200, head, body, 10, 10, None, "http://h", "/")
    assert r.json() == {"x": [1, 2]} and r.text == '{"x": [1, 2]}'
    failed = Response(0, b"", b"", 10, 0, "ConnectionRefusedError: [Errno 111] Connection refused", "http://h", "/")
    assert not failed.ok and not failed and failed.headers == {} and failed.content == b""
    assert "refused" in repr(failed)


def test_headers_from_fields() -> None:
    h = Headers.parse(b"HTTP/1.1 204 No Content\r\nA: 1\r\nbad line\r\nB:2")
    assert dict(h) == {"A": "1", "B": "2"}


# -- framing against a real socket pair ---------------------------------------------------
def exchange(chunks: list[bytes], head_only: bool = False, max_body: int = 1 << 20) -> tuple:
    """Serve `chunks` (written one by one) on a socketpair; return Connection.roundtrip()."""
    a, b = socket.socketpair()
    conn = Connection(a, Origin("http", "127.0.0.1", 80))
    conn.read_timeout = 2.0
    a.settimeout(2.0)

    def serve() -> None:
        b.recv(65536)
        for c in chunks:
            b.sendall(c)
            gevent.sleep(0.0005)
        gevent.sleep(0.02)
        b.close()

    g = gevent.spawn(serve)
    try:
        return conn.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", head_only, max_body)
    finally:
        g.kill()
        a.close()
        b.close()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[i:j] for i, j in zip(points, points[1:]) if j > i]


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=3000),
    chunked=st.booleans(),
    name_case=st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]),
    status=st.sampled_from([200, 201, 404, 500]),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
)
def test_framing_matches_for_any_split(body: bytes, chunked: bool, name_case: str, status: int, cuts: list[int]) -> None:
    if chunked:
        wire_body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in split(body, cuts) if p) + b"0\r\n\r\n"
        head = f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    else:
        wire_body = body
        head = f"HTTP/1.1 {status} X\r\nServer: t\r\n{name_case}: {len(body)}\r\n\r\n".encode()
    wire = head + wire_body
    got_status, got_head, got_body, nbytes, keep, truncated = exchange(split(wire, cuts))
    assert (got_status, got_body, nbytes, keep, truncated) == (status, body, len(wire), True, 0)
    assert got_head == head[:-4]


def test_framing_edge_cases() -> None:
    # a repeated Content-Length must agree (as in requests/urllib3); one that differs is refused
    assert exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"])[2] == b"ok"
    with pytest.raises(ProtocolError):
        exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk"])
    with pytest.raises(ProtocolError):
        exchange([b"SSH-2.0-OpenSSH\r\n\r\n"])
    # bytes beyond the response: kept-alive connection is not reused
    assert exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"])[4] is False
    # Connection: close and HTTP/1.0 keep-alive rules
    assert exchange([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"])[4] is False
    assert exchange([b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"])[4] is False
    assert exchange([b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"])[4] is True
    # HEAD: the length describes a body that is not sent
    r = exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"], head_only=True)
    assert r[2] == b"" and r[4] is True
    # 1xx interim responses are skipped, including split ones
    parts = [b"HTTP/1.1 100 Cont", b"inue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"]
    r = exchange(parts)
    assert r[0] == 200 and r[2] == b"x" and r[3] == len(b"".join(parts))
    # body larger than max_body is drained and truncated, chunked too
    r = exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"], max_body=4)
    assert r[2] == b"0123" and r[5] == TRUNCATED and r[4] is True
    r = exchange([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"], max_body=7)
    assert r[2] == b"hellowo" and r[5] == TRUNCATED
    # premature close mid-body
    with pytest.raises(ConnectionError):
        exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123"])
    with pytest.raises(ConnectionError):
        exchange([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"])
    with pytest.raises(ConnectionError):
        exchange([b"HTTP/1.1 200 OK\r\nContent-Le"])
    with pytest.raises(ConnectionError):
        exchange([])


def test_huge_head_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        exchange([b"HTTP/1.1 200 OK\r\n", b"X: " + b"a" * 70_000 + b"\r\n\r\n"])
