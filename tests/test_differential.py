"""Client truth against misbehaving servers, differentially: every case runs through `requests` and
through loadgen, each against its own fresh server, and is compared by what the server saw (method,
target, headers, body, how many times) and what each client reported (status, body, failed or not).

Each case also asserts the truth about loadgen's run on its own (`check`), so it fails on a client
that gets it wrong even where requests gets it wrong too. Where loadgen deliberately differs from
requests the case says so in `differs`, and docs/requests-compat.md gives the reason (a test below
keeps the two in step).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from differential import Run, Step, compare, run_loadgen, run_requests, seen_of
from misbehaving import (
    Handler,
    RawServer,
    answering,
    canned,
    closes_after_each_response,
    closes_when_idle,
    drops_second_request,
    keep_alive_header,
    redirecting,
    sends_408_when_idle,
    trickling,
)

from loadgen.client import COUNTERS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "requests-compat.md"


@dataclass
class Servers:
    main: RawServer
    other: dict[str, RawServer] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    serve: Callable[[ExitStack], Servers]
    steps: Callable[[Servers], list[Step]]
    check: Callable[[Run, Servers], None]
    differs: frozenset[str] = frozenset()  # "seen" and/or "outcomes": explained in docs/requests-compat.md


def one(handler: Callable[[], Handler]) -> Callable[[ExitStack], Servers]:
    def serve(stack: ExitStack) -> Servers:
        server = RawServer(handler())
        stack.callback(server.stop)
        return Servers(server)

    return serve


def hits(servers: Servers, method: str, target: str) -> int:
    return sum(1 for s in servers.main.seen if s.method == method and s.target == target)


# ---- the checks (loadgen's run on its own) ------------------------------------------------------------
def post_sent_once(run: Run, servers: Servers) -> None:
    assert hits(servers, "POST", "/order") == 1, servers.main.seen
    assert run.outcomes[0].failed is False and run.outcomes[1].failed is True
    assert "not sent again" in run.outcomes[1].error


def get_retried_once(run: Run, servers: Servers) -> None:
    assert [s.conn for s in servers.main.seen if s.target == "/again"] == [1, 2]  # the same GET, new connection
    assert [o.failed for o in run.outcomes] == [False, False]


def all_ok_each_once(run: Run, servers: Servers) -> None:
    assert [o.failed for o in run.outcomes] == [False] * len(run.outcomes), run.outcomes
    targets = [s.target for s in servers.main.seen]
    assert len(targets) == len(set(targets)) == len(run.outcomes), servers.main.seen


def failed_as_protocol_error(run: Run, servers: Servers) -> None:
    (outcome,) = run.outcomes
    assert outcome.failed and outcome.status is None and outcome.error.startswith("ProtocolError"), outcome


def body_is(expected: bytes) -> Callable[[Run, Servers], None]:
    def check(run: Run, servers: Servers) -> None:
        (outcome,) = run.outcomes
        assert not outcome.failed and outcome.body == expected, outcome

    return check


def seen_target(expected: str) -> Callable[[Run, Servers], None]:
    def check(run: Run, servers: Servers) -> None:
        assert [s.target for s in servers.main.seen] == [expected]
        assert not run.outcomes[0].failed

    return check


def status_line_case(line: bytes) -> Case:
    label = line.decode().replace(" ", "_")
    return Case(f"status-line-{label}", one(lambda: canned(line + b"\r\nContent-Length: 2\r\n\r\nok")),
                lambda s: [Step("GET", "/")], failed_as_protocol_error)


def length_case(name: str, fields: bytes, body: bytes, check: Callable[[Run, Servers], None],
                differs: frozenset[str] = frozenset()) -> Case:
    raw = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n" + body
    return Case(name, one(lambda: canned(raw)), lambda s: [Step("GET", "/")], check, differs)


def one_content_length(run: Run, servers: Servers) -> None:
    (seen,) = servers.main.seen
    assert seen.header("content-length") == ["3"] and seen.body == b"abc"


def head_not_waiting(run: Run, servers: Servers) -> None:
    assert [s.method for s in servers.main.seen] == ["HEAD", "GET"]
    assert [o.failed for o in run.outcomes] == [False, False]


def accept_encoding(run: Run, servers: Servers) -> None:
    (seen,) = servers.main.seen
    assert seen.header("accept-encoding") == [requests.utils.DEFAULT_ACCEPT_ENCODING]


def decoding_failed(run: Run, servers: Servers) -> None:
    (outcome,) = run.outcomes
    assert outcome.failed and outcome.status == 200 and "ContentDecodingError" in outcome.error, outcome


def body_seen(expected: bytes) -> Callable[[Run, Servers], None]:
    def check(run: Run, servers: Servers) -> None:
        (seen,) = servers.main.seen
        assert seen.body == expected

    return check


def cross_host(stack: ExitStack) -> Servers:
    landing = RawServer(answering())
    stack.callback(landing.stop)
    main = RawServer(redirecting(f"http://localhost:{landing.port}/landing"))  # localhost is another host
    stack.callback(main.stop)
    return Servers(main, {"landing": landing})


def same_host(stack: ExitStack) -> Servers:
    main = RawServer(lambda peer: _redirect_then_answer(peer))
    stack.callback(main.stop)
    return Servers(main)


def _redirect_then_answer(peer: object) -> None:
    from misbehaving import MAX_REQUESTS, Peer

    assert isinstance(peer, Peer)
    for _ in range(MAX_REQUESTS):
        seen = peer.read_request()
        if seen is None:
            return
        if seen.target == "/start":
            peer.reply(b"", "302 Found", "Location: /landing\r\n")
        else:
            peer.reply()


def credentials_dropped(run: Run, servers: Servers) -> None:
    (first,) = servers.main.seen
    (landed,) = servers.other["landing"].seen
    assert first.header("authorization") == ["Bearer secret"] and first.header("cookie") == ["sid=1"]
    assert landed.target == "/landing" and landed.header("authorization") == [] and landed.header("cookie") == []
    assert not run.outcomes[0].failed


def credentials_kept(run: Run, servers: Servers) -> None:
    first, landed = servers.main.seen
    assert first.header("cookie") == ["sid=1"]
    assert landed.target == "/landing" and landed.header("authorization") == ["Bearer secret"]
    assert landed.header("cookie") == []  # a Cookie header is not sent on; the jar's cookies are


def bad_scheme_redirect(run: Run, servers: Servers) -> None:
    assert len(servers.main.seen) == 1  # never requested as a path on this host
    assert run.outcomes[0].failed and "not an http(s) URL" in run.outcomes[0].error


TRICKLED = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 1100 + b"\r\nContent-Length: 2\r\n\r\nok"
AUTH = {"Authorization": "Bearer secret", "Cookie": "sid=1"}

CASES = [
    Case("post-after-keepalive-close", one(lambda: drops_second_request("close")),
         lambda s: [Step("GET", "/first"), Step("POST", "/order", {"data": b"one order"})], post_sent_once),
    Case("post-after-keepalive-reset", one(lambda: drops_second_request("reset")),
         lambda s: [Step("GET", "/first"), Step("POST", "/order", {"data": b"one order"})], post_sent_once),
    Case("get-after-keepalive-close", one(lambda: drops_second_request("close")),
         lambda s: [Step("GET", "/first"), Step("GET", "/again")], get_retried_once,
         frozenset({"seen", "outcomes"})),
    Case("post-right-after-silent-close", one(closes_after_each_response),  # 10 ms: sooner than an idle check
         lambda s: [Step("GET", "/a"), Step("POST", "/b", {"data": b"x"}, think=0.01),
                    Step("POST", "/c", {"data": b"y"}, think=0.01)], all_ok_each_once),
    Case("idle-close-then-post", one(lambda: closes_when_idle(0.3)),
         lambda s: [Step("GET", "/a"), Step("POST", "/b", {"data": b"x"}, think=0.6)], all_ok_each_once),
    Case("keep-alive-timeout-then-post", one(lambda: keep_alive_header(1)),
         lambda s: [Step("GET", "/a"), Step("POST", "/b", {"data": b"x"}, think=1.3)], all_ok_each_once,
         frozenset({"outcomes"})),
    Case("idle-408-then-get", one(lambda: sends_408_when_idle(0.3)),
         lambda s: [Step("GET", "/a"), Step("GET", "/b", think=0.6)], all_ok_each_once),
    *(status_line_case(line) for line in (b"HTTP/1.1 20 OK", b"HTTP/1.1 2004 OK", b"HTTP/1.1 -20 OK",
                                          b"HTTP/1.1200 OK", b"HTTP/1.1 20x OK", b"HTTP/2 200 OK",
                                          b"ICY 200 OK")),
    length_case("content-length-plus", b"Content-Length: +5\r\n", b"hello", failed_as_protocol_error,
                frozenset({"outcomes"})),
    length_case("content-length-underscore", b"Content-Length: 1_0\r\n", b"0123456789", failed_as_protocol_error,
                frozenset({"outcomes"})),
    length_case("content-length-repeated", b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello",
                body_is(b"hello")),
    length_case("content-length-list", b"Content-Length: 5, 5\r\n", b"hello", body_is(b"hello")),
    length_case("content-length-conflict", b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!",
                failed_as_protocol_error),
    Case("head-trickled-in-1100-reads", one(lambda: trickling(TRICKLED)), lambda s: [Step("GET", "/")],
         body_is(b"ok")),
    Case("non-ascii-path", one(answering), lambda s: [Step("GET", "/caf\u00e9/a b?q=\u00fc#frag")],
         seen_target("/caf%C3%A9/a%20b?q=%C3%BC")),
    Case("unreserved-escapes", one(answering), lambda s: [Step("GET", "/%7Euser/%2F%41?x=%20")],
         seen_target("/~user/%2FA?x=%20")),
    Case("fragment-before-params", one(answering), lambda s: [Step("GET", "/p#frag", {"params": {"a": "1"}})],
         seen_target("/p?a=1")),
    Case("params-none-dropped", one(answering),
         lambda s: [Step("GET", "/q", {"params": {"n": None, "k": ["1", "2"], "e": ""}})],
         seen_target("/q?k=1&k=2&e=")),
    Case("user-content-length", one(answering),
         lambda s: [Step("POST", "/", {"data": b"abc", "headers": {"Content-Length": "999"}})],
         one_content_length),
    Case("lowercase-head", one(answering), lambda s: [Step("head", "/"), Step("get", "/")], head_not_waiting),
    Case("accept-encoding", one(answering), lambda s: [Step("GET", "/")], accept_encoding),
    Case("corrupt-gzip", one(lambda: canned(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                             b"Content-Length: 9\r\n\r\nnot gzip!")),
         lambda s: [Step("GET", "/")], decoding_failed, frozenset({"outcomes"})),
    Case("gzip-decoded", one(lambda: answering(gzip.compress(b"unzipped"), "Content-Encoding: gzip\r\n")),
         lambda s: [Step("GET", "/")], body_is(b"unzipped")),
    Case("data-wins-over-json", one(answering),
         lambda s: [Step("POST", "/", {"data": "a=1", "json": {"x": 1}})], body_seen(b"a=1")),
    Case("form-none-dropped", one(answering),
         lambda s: [Step("POST", "/", {"data": {"a": "1", "b": None, "c": ["x", "y"]}})],
         body_seen(b"a=1&c=x&c=y")),
    Case("redirect-to-other-host-drops-credentials", cross_host,
         lambda s: [Step("GET", "/start", {"headers": AUTH})], credentials_dropped),
    Case("redirect-same-host-keeps-authorization", same_host,
         lambda s: [Step("GET", "/start", {"headers": AUTH})], credentials_kept),
    Case("redirect-to-ftp", one(lambda: redirecting("ftp://127.0.0.1/file")), lambda s: [Step("GET", "/")],
         bad_scheme_redirect),
]


def _run(case: Case, client: str) -> tuple[Run, Servers]:
    with ExitStack() as stack:
        servers = case.serve(stack)
        steps = case.steps(servers)
        runner = run_requests if client == "requests" else run_loadgen
        outcomes = runner(servers.main.url, steps)
        seen = [s for server in (servers.main, *servers.other.values()) for s in server.seen]
        return Run(outcomes, seen_of(seen), seen), servers


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    COUNTERS.reset()
    ours, servers = _run(case, "loadgen")
    case.check(ours, servers)
    theirs, _ = _run(case, "requests")
    diffs = compare(theirs, ours, case.differs)
    assert not diffs, "\n".join(diffs)
    for part in case.differs:  # a listed divergence that went away is a stale list
        assert compare(theirs, ours, frozenset({"seen", "outcomes"} - {part})), f"{case.name}: {part} no longer differs"


def test_retry_counters() -> None:
    case = {c.name: c for c in CASES}
    COUNTERS.reset()
    _run(case["get-after-keepalive-close"], "loadgen")
    assert COUNTERS.retries == 1
    COUNTERS.reset()
    _run(case["post-after-keepalive-close"], "loadgen")
    assert COUNTERS.retries == 0
    COUNTERS.reset()
    _run(case["idle-close-then-post"], "loadgen")
    assert COUNTERS.retries == 0 and COUNTERS.idle_dropped == 1
    COUNTERS.reset()
    _run(case["post-right-after-silent-close"], "loadgen")  # both POSTs found their connection closed
    assert COUNTERS.retries == 0 and COUNTERS.idle_dropped == 2


def test_every_divergence_is_documented() -> None:
    text = DOCS.read_text()
    for case in CASES:
        if case.differs:
            assert f"`{case.name}`" in text, f"docs/requests-compat.md does not explain {case.name}"


def test_zero_timeout_is_refused_like_requests() -> None:
    with pytest.raises(ValueError):
        requests.get("http://127.0.0.1:9/", timeout=0)
    with ExitStack() as stack:
        servers = one(answering)(stack)
        with pytest.raises(ValueError, match="timeout must be > 0"):
            run_loadgen(servers.main.url, [Step("GET", "/", {"timeout": 0})])
        assert servers.main.seen == []
