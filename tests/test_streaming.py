"""``stream=True``: the body is read as the script iterates it, and the request is recorded once, at the body's
end, with time to first byte and body time apart.

Against raw servers on 127.0.0.1 (tests/misbehaving.py) that stream server-sent events, chunked, with a known
delay between events, and against the real servers (uvicorn, hypercorn, gunicorn's gevent worker) streaming
NDJSON. What the client yields is compared with what `requests` yields from the same server; when each piece
arrived is compared with when the server sent it.
"""

from __future__ import annotations

import gc
import gzip
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import requests
from client_servers import FakeRecorder
from misbehaving import MAX_REQUESTS, Handler, Peer, RawServer, serving

from loadgen.client import ClientFactory, ClientSettings
from loadgen.client.streaming import StreamConsumedError

pytest_plugins = ["real_servers"]

EVENTS = 5
GAP = 0.15  # seconds between two events


def sse(events: int = EVENTS, gap: float = GAP, then: str = "end") -> Handler:
    """Answers each request with `events` server-sent events, chunked, `gap` s apart; `then` is what ends
    the body: "end" (the last chunk), "close" (no last chunk: the connection closes mid-body), "stall"
    (nothing more for 3 s). Records when each event left in ``peer.server.sent``."""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            if peer.read_request() is None:
                return
            peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(events):
                if i:
                    time.sleep(gap)
                event = f"id: {i}\r\ndata: token {i}\r\n\r\n".encode()
                peer.server.sent.append(time.perf_counter())  # type: ignore[attr-defined]
                peer.send(b"%x\r\n%s\r\n" % (len(event), event))
            if then == "close":
                return
            if then == "stall":
                time.sleep(3)
                return
            peer.send(b"0\r\n\r\n")

    return handle


def bodies(kind: str) -> Handler:
    """One body three ways: Content-Length, chunked in small pieces, or close-delimited; gzip-coded with
    a "gz" prefix (a stream of gzip members decoded as they come)."""
    plain = b"".join(b"line %d: %s\n" % (i, b"x" * (i % 50)) for i in range(400))
    payload = gzip.compress(plain, mtime=0) if kind.startswith("gz") else plain
    coding = "Content-Encoding: gzip\r\n" if kind.startswith("gz") else ""

    def handle(peer: Peer) -> None:
        for _ in range(MAX_REQUESTS):
            if peer.read_request() is None:
                return
            if kind.endswith("length"):
                peer.send(f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n{coding}\r\n".encode() + payload)
            elif kind.endswith("chunked"):
                peer.send(f"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{coding}\r\n".encode())
                for i in range(0, len(payload), 997):
                    piece = payload[i : i + 997]
                    peer.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                peer.send(b"0\r\n\r\n")
            else:
                peer.send(f"HTTP/1.1 200 OK\r\nConnection: close\r\n{coding}\r\n".encode() + payload)
                return

    handle.plain = plain  # type: ignore[attr-defined]
    return handle


def server_for(handler: Handler) -> Callable[[], Any]:
    def start() -> RawServer:
        server = RawServer(handler)
        server.sent = []  # type: ignore[attr-defined]
        return server

    return start


def make(recorder: FakeRecorder, read_timeout: float = 5.0) -> ClientFactory:
    return ClientFactory(ClientSettings(connect_timeout=5.0, read_timeout=read_timeout), recorder)


def test_events_arrive_as_the_server_sends_them_and_the_request_is_recorded_at_the_end() -> None:
    recorder = FakeRecorder()
    server = server_for(sse())()
    factory = make(recorder)
    try:
        session = factory.session(server.url)
        t0 = time.perf_counter()
        resp = session.get("/events", stream=True, name="sse")
        headers_at = time.perf_counter() - t0
        assert recorder.calls == []  # not yet: the body is still coming
        seen: list[tuple[float, str]] = []
        for line in resp.iter_lines(decode_unicode=True):
            seen.append((time.perf_counter(), line))
        assert [line for _, line in seen if line.startswith("data:")] == [f"data: token {i}" for i in range(EVENTS)]
        assert [line for _, line in seen].count("") == EVENTS  # blank lines end events: kept
        data_times = [t for t, line in seen if line.startswith("data:")]
        for sent, got in zip(server.sent, data_times, strict=True):
            assert 0 <= got - sent < GAP / 2, "an event waited for later ones"
        assert len(recorder.calls) == 1
        method, name, latency_us, nbytes, error, _ = recorder.calls[0]
        ttfb_us, body_us, setup = recorder.phases[0]
        assert (method, name, error) == ("GET", "sse", None)
        assert headers_at < GAP and ttfb_us < GAP * 1e6
        assert body_us >= (EVENTS - 1) * GAP * 1e6 * 0.9
        assert latency_us >= ttfb_us + body_us
        assert setup is not None  # it opened the connection
        assert nbytes > EVENTS * 20 and resp.nbytes == nbytes and resp.latency_us == latency_us
        # the connection went back to the pool: the next request reuses it
        assert session.get("/again").ok
        assert [s.conn for s in server.seen] == [1, 1]
    finally:
        factory.close_all()
        server.stop()


@pytest.mark.parametrize("kind", ["length", "chunked", "close", "gz-length", "gz-chunked", "gz-close"])
@pytest.mark.parametrize("chunk_size", [None, 1, 512, 10_000])
def test_iter_content_yields_what_requests_yields(kind: str, chunk_size: int | None) -> None:
    handler = bodies(kind)
    with serving(handler) as server:
        with requests.get(server.url + "/b", stream=True, timeout=5) as r:
            expected = b"".join(r.iter_content(chunk_size))
            expected_lines = list(requests.get(server.url + "/b", stream=True, timeout=5).iter_lines())
        recorder = FakeRecorder()
        factory = make(recorder)
        try:
            session = factory.session(server.url)
            pieces = list(session.get("/b", stream=True).iter_content(chunk_size))
            lines = list(session.get("/b", stream=True).iter_lines())
        finally:
            factory.close_all()
    assert expected == handler.plain  # type: ignore[attr-defined]
    assert b"".join(pieces) == expected and lines == expected_lines
    if chunk_size is not None:
        assert max(len(p) for p in pieces) <= chunk_size
    assert recorder.errors == [None, None]
    keep = not kind.endswith("close")
    assert [s.conn for s in server.seen[-2:]] == ([3, 3] if keep else [3, 4])  # requests' two were 1 and 2


def test_content_text_and_json_read_a_stream_whole() -> None:
    with serving(bodies("gz-chunked")) as server:
        recorder = FakeRecorder()
        factory = make(recorder)
        try:
            session = factory.session(server.url)
            resp = session.get("/b", stream=True)
            assert resp.content.startswith(b"line 0: \nline 1: x\n") and resp.text.endswith("x" * 49 + "\n")
            assert list(resp.iter_content(None)) == [resp.content]  # read once, iterated from memory
            other = session.get("/b", stream=True)
            next(other.iter_content(10))
            with pytest.raises(StreamConsumedError):
                list(other.iter_content(10))
            other.close()
        finally:
            factory.close_all()
    assert recorder.errors == [None, None]


def test_a_stream_closed_or_dropped_early_is_recorded_once_and_its_connection_not_reused() -> None:
    recorder = FakeRecorder()
    server = server_for(sse(events=20, gap=0.05))()
    factory = make(recorder)
    try:
        session = factory.session(server.url)
        with session.get("/one", stream=True) as resp:
            next(resp.iter_lines())
        assert len(recorder.calls) == 1 and recorder.errors == [None]
        dropped = session.get("/two", stream=True)
        next(dropped.iter_content(None))
        del dropped
        gc.collect()
        assert len(recorder.calls) == 2
        assert session.get("/three").status_code == 200
        assert [s.conn for s in server.seen] == [1, 2, 3]
        body_us = [p[1] for p in recorder.phases]
        assert body_us[0] < 20 * 0.05 * 1e6 / 2  # recorded when closed, not when the server finished
    finally:
        factory.close_all()
        server.stop()


def test_a_body_cut_mid_stream_is_a_recorded_failure_not_an_exception() -> None:
    recorder = FakeRecorder()
    server = server_for(sse(events=3, gap=0.05, then="close"))()
    factory = make(recorder)
    try:
        resp = factory.session(server.url).get("/cut", stream=True)
        lines = list(resp.iter_lines())
        assert b"data: token 2" in lines
        assert not resp.ok and resp.error is not None and resp.error.startswith("ConnectionClosed")
        assert recorder.errors == [resp.error]
    finally:
        factory.close_all()
        server.stop()


def test_the_read_timeout_applies_to_each_wait_for_more() -> None:
    recorder = FakeRecorder()
    server = server_for(sse(events=4, gap=0.3, then="stall"))()
    factory = make(recorder, read_timeout=1.0)  # longer than any gap, shorter than the stall
    try:
        t0 = time.perf_counter()
        resp = factory.session(server.url).get("/slow", stream=True)
        lines = [ln for ln in resp.iter_lines() if ln.startswith(b"data")]
        took = time.perf_counter() - t0
        assert len(lines) == 4 and 1.9 < took < 2.9  # 0.9 s of gaps, then 1 s of silence
        assert resp.error is not None and resp.error.startswith("ReadTimeout")
        assert recorder.errors == [resp.error]
    finally:
        factory.close_all()
        server.stop()


def test_catch_response_decides_after_the_stream() -> None:
    recorder = FakeRecorder()
    server = server_for(sse(events=3, gap=0.05))()
    factory = make(recorder)
    try:
        session = factory.session(server.url)
        with session.get("/c", stream=True, catch_response=True) as resp:
            tokens = [ln for ln in resp.iter_lines() if ln.startswith(b"data")]
            if len(tokens) < 10:
                resp.failure(f"only {len(tokens)} tokens")
        assert recorder.errors == ["only 3 tokens"]
        ttfb_us, body_us, _ = recorder.phases[0]
        assert ttfb_us > 0 and body_us >= 2 * 0.05 * 1e6 * 0.9
    finally:
        factory.close_all()
        server.stop()


def redirect_then_sse(peer: Peer) -> None:
    for _ in range(MAX_REQUESTS):
        seen = peer.read_request()
        if seen is None:
            return
        if seen.target == "/old":
            peer.reply(b"moved", status="302 Found", extra="Location: /events\r\n")
            continue
        sse(events=2, gap=0.01)(_OneRequest(peer, seen))
        return


class _OneRequest(Peer):
    """A peer whose next request is one already read (to hand it to another handler)."""

    def __init__(self, peer: Peer, seen: Any) -> None:
        self.__dict__.update(peer.__dict__)
        self._first: Any = seen

    def read_request(self, timeout: float = 10.0) -> Any:
        first, self._first = self._first, None
        return first


def test_redirects_are_followed_and_the_final_body_streamed() -> None:
    recorder = FakeRecorder()
    server = server_for(redirect_then_sse)()
    factory = make(recorder)
    try:
        resp = factory.session(server.url).get("/old", stream=True)
        assert resp.status_code == 200 and [h.status_code for h in resp.history] == [302]
        assert sum(1 for ln in resp.iter_lines() if ln.startswith(b"data")) == 2
        assert [s.target for s in server.seen] == ["/old", "/events"] and [s.conn for s in server.seen] == [1, 1]
        assert len(recorder.calls) == 1 and recorder.errors == [None]
    finally:
        factory.close_all()
        server.stop()


@pytest.mark.parametrize("fixture", ["uvicorn_server", "hypercorn_server", "gunicorn_gevent_server"])
def test_real_servers_stream_ndjson_as_it_is_produced(fixture: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(fixture)
    n, delay = 6, 0.12
    recorder = FakeRecorder()
    factory = make(recorder)
    try:
        session = factory.session(server.url)
        t0 = time.perf_counter()
        resp = session.get(f"/stream?n={n}&delay={delay}", stream=True, name="ndjson")
        arrivals = []
        for line in resp.iter_lines():
            arrivals.append((time.perf_counter() - t0, line))
        expected = [ln for ln in requests.get(f"{server.url}/stream?n={n}&delay=0", timeout=5).iter_lines()]
    finally:
        factory.close_all()
    assert [line for _, line in arrivals] == expected
    firsts, lasts = arrivals[0][0], arrivals[-1][0]
    assert lasts - firsts >= (n - 1) * delay * 0.8, "lines were buffered until the end"
    assert recorder.errors == [None]
    ttfb_us, body_us, _ = recorder.phases[0]
    assert body_us >= (n - 1) * delay * 1e6 * 0.8 and ttfb_us < body_us


def test_a_corrupt_gzip_stream_is_a_decoding_failure() -> None:
    payload = gzip.compress(b"hello " * 1000, mtime=0)
    corrupt = payload[:20] + bytes(b ^ 0x5A for b in payload[20:40]) + payload[40:]

    def handle(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.reply(corrupt, extra="Content-Encoding: gzip\r\n")

    with pytest.raises(zlib.error):
        zlib.decompress(corrupt, 16 + zlib.MAX_WBITS)
    recorder = FakeRecorder()
    with serving(handle) as server:
        factory = make(recorder)
        try:
            resp = factory.session(server.url).get("/", stream=True)
            list(resp.iter_content(None))
        finally:
            factory.close_all()
    assert resp.error is not None and resp.error.startswith("ContentDecodingError")
    assert recorder.errors == [resp.error]


def test_line_and_piece_helpers() -> None:
    from loadgen.client.chunks import as_text, resized, split_lines

    assert list(split_lines([b"a\r", b"\nb\n\n", b"c"])) == [b"a", b"b", b"", b"c"]  # CR LF split: one end
    assert list(split_lines([b"a\r", b"b"])) == [b"a", b"b"]  # a lone CR ends a line too
    assert list(split_lines(["x;y", ";z;"], ";")) == ["x", "y", "z"]
    assert list(resized([b"abcde", b"f"], 2)) == [b"ab", b"cd", b"e", b"f"]
    assert "".join(as_text([b"\xe2\x82", b"\xac"], "utf-8")) == "\u20ac"  # a character split across pieces
    with pytest.raises(ValueError, match="chunk_size"):
        list(resized([b"a"], 0))
