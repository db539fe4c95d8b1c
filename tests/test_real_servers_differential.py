"""The differential suite against the servers people load-test: nginx, uvicorn, hypercorn, gunicorn (sync
and gevent workers) and httpbin, all on loopback at their default settings (tests/real_servers.py).

For every echo server, one sequence of requests goes through `requests` and through loadgen (one session
each, so keep-alive reuse is part of it), including a think time longer than the server's default
keep-alive timeout before a POST. What the server recorded (method, target, headers, body) and what each
client reported (status, failed or not) must be the same, and the POST must reach the server exactly once.
httpbin answers with what it received (/anything), and its answers are compared instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.register_assert_rewrite("real_servers")

from differential import Outcome, Step, normalise_headers, run_loadgen, run_requests  # noqa: E402
from misbehaving import RawServer, answering  # noqa: E402
from real_servers import Httpbin, Nginx, RealServer, record_body  # noqa: E402

from loadgen.client import COUNTERS  # noqa: E402

pytest_plugins = ["real_servers"]

NGINX_FORWARDED = {"x-real-ip", "x-forwarded-for"}  # nginx adds none by default; listed to be explicit


def _steps(server: RealServer, landing: RawServer) -> list[Step]:
    idle = (server.keep_alive_timeout or 0.0) + 1.0 if not isinstance(server, Nginx) else 1.0
    return [
        Step("GET", "/caf\u00e9/a b?q=\u00fc#frag"),
        Step("GET", "/q", {"params": {"n": None, "k": ["1", "2"], "e": ""}}),
        Step("POST", "/form", {"data": {"a": "1", "b": None, "c": ["x", "y"]}}),
        Step("POST", "/json", {"data": "raw=1", "json": {"x": 1}}),
        Step("PUT", "/length", {"data": b"abc", "headers": {"Content-Length": "999"}}),
        Step("head", "/head"),
        Step("GET", "/gzip"),
        Step("GET", "/status/404"),
        Step("GET", f"/redirect?to=http://127.0.0.2:{landing.port}/landing&code=302",
             {"headers": {"Authorization": "Bearer secret", "Cookie": "sid=1"}}),
        Step("POST", "/after-idle", {"data": b"exactly once"}, think=idle),
    ]


def _seen(server: RealServer, count: int) -> list[tuple[str, str, tuple[tuple[str, str], ...], bytes]]:
    records = server.seen(expect=count)
    return [(r["method"], r["path"], normalise_headers((k, v) for k, v in r["headers"] if k not in NGINX_FORWARDED),
             record_body(r)) for r in records]


def _reported(outcomes: list[Outcome]) -> list[tuple[int | None, bool]]:
    return [(o.status, o.failed) for o in outcomes]


def test_same_requests_and_answers(echo_server: RealServer) -> None:
    runs = {}
    landed = {}
    landing = RawServer(answering(), host="127.0.0.2")  # another host: no credentials follow there
    try:
        for client, runner in (("requests", run_requests), ("loadgen", run_loadgen)):
            steps = _steps(echo_server, landing)
            echo_server.clear()
            landing.clear()
            COUNTERS.reset()
            outcomes = runner(echo_server.url, steps)
            runs[client] = (outcomes, _seen(echo_server, len(steps)))
            landed[client] = list(landing.seen)
    finally:
        landing.stop()
    for client, (outcomes, seen) in runs.items():
        posts = [s for s in seen if s[1] == "/after-idle"]
        assert len(posts) == 1 and posts[0][3] == b"exactly once", (client, seen)
        assert [o.failed for o in outcomes] == [False] * 7 + [True, False, False], (
            client, [(o.status, o.error[:200]) for o in outcomes])
        assert json.loads(outcomes[6].body)["path"] == "/gzip"  # decoded, whoever compressed it
        (hop,) = landed[client]
        assert hop.header("authorization") == [] and hop.header("cookie") == [], (client, hop)
    (theirs, seen_theirs), (ours, seen_ours) = runs["requests"], runs["loadgen"]
    assert _reported(ours) == _reported(theirs)
    assert seen_ours == seen_theirs
    assert seen_ours[0][1] == "/caf%C3%A9/a%20b?q=%C3%BC"


HTTPBIN_STEPS = [
    Step("GET", "/anything/caf\u00e9?q=\u00fc", {"params": {"n": None, "k": ["1", "2"]}}),
    Step("POST", "/anything", {"data": {"a": "1", "b": None}}),
    Step("POST", "/anything", {"json": {"x": [1, 2]}}),
    Step("PATCH", "/anything", {"data": b"\x00\xff", "headers": {"Content-Type": "application/octet-stream"}}),
    Step("GET", "/gzip"),
    Step("GET", "/deflate"),
    Step("GET", "/brotli"),
    Step("GET", "/bytes/2048?seed=7"),
    Step("GET", "/stream-bytes/4096?seed=3&chunk_size=100"),
    Step("GET", "/redirect/3"),
    Step("GET", "/relative-redirect/2"),
    Step("GET", "/absolute-redirect/2"),
    Step("GET", "/redirect-to?url=/anything&status_code=307"),
    Step("POST", "/redirect-to?url=/anything&status_code=303", {"data": b"gone"}),
    Step("GET", "/cookies/set?flavour=oat"),
    Step("GET", "/status/418"),
    Step("GET", "/status/204"),
    Step("HEAD", "/get"),
    Step("DELETE", "/delete"),
    Step("GET", "/encoding/utf8"),
    Step("GET", "/response-headers?X-Set=1&X-Set=2"),
]


def _comparable(body: bytes) -> Any:
    """httpbin's answer minus what names each client (User-Agent, its own Connection header)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and isinstance(data.get("headers"), dict):
        data["headers"] = {k: v for k, v in data["headers"].items() if k.lower() not in ("user-agent", "connection")}
    if isinstance(data, dict) and "user-agent" in data:
        data.pop("user-agent")
    return data


def test_httpbin_answers_the_same(httpbin_server: Httpbin) -> None:
    assert isinstance(httpbin_server, Httpbin)
    theirs = run_requests(httpbin_server.url, HTTPBIN_STEPS)
    ours = run_loadgen(httpbin_server.url, HTTPBIN_STEPS)
    assert _reported(ours) == _reported(theirs)
    for step, a, b in zip(HTTPBIN_STEPS, theirs, ours):
        assert _comparable(b.body) == _comparable(a.body), (step, a.body[:300], b.body[:300])
    assert ours[15].status == 418 and ours[15].failed
    assert json.loads(ours[4].body)["gzipped"] is True and json.loads(ours[6].body)["brotli"] is True
