"""The differential harness: the same steps sent by `requests` and by loadgen's client, compared by
what the server saw and what each client reported.

A *step* is one request (method, URL or path, keyword arguments) and an optional think time before it.
Both clients run the steps in order on one session each (so keep-alive reuse is part of the case), each
against its own fresh server, and yield a `Run`: the server's log plus one `Outcome` per step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from loadgen.client import ClientFactory, ClientSettings

CLIENT_TIMEOUT = 5.0
IGNORED_HEADERS = frozenset({"user-agent"})  # each client names itself
REQUESTS_ONLY_HEADERS = {("connection", "keep-alive")}  # requests says what HTTP/1.1 implies; loadgen does not


@dataclass(frozen=True)
class Step:
    method: str
    path: str  # absolute URL, or a path joined to the server's URL
    kwargs: dict[str, Any] = field(default_factory=dict)
    think: float = 0.0  # seconds to wait before this step (idle keep-alive)


@dataclass(frozen=True)
class Outcome:
    """What a client reported for one step."""

    status: int | None  # None: a transport error, no response
    body: bytes
    failed: bool  # transport error or status >= 400 (Locust's and loadgen's rule)
    error: str = ""


@dataclass
class Run:
    outcomes: list[Outcome]
    seen: list[tuple[str, str, tuple[tuple[str, str], ...], bytes]]  # (method, target, headers, body)
    raw_seen: list[Any]


def normalise_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Lower-case names, sorted; each client's own name left out; ports (each run has its own server) as PORT."""
    pairs = [(k.lower(), re.sub(r":\d+\b", ":PORT", v) if k.lower() == "host" else v)
             for k, v in headers if k.lower() not in IGNORED_HEADERS]
    return tuple(sorted(p for p in pairs if p not in REQUESTS_ONLY_HEADERS))


def _url(base: str, path: str) -> str:
    return path if path.startswith(("http://", "https://")) else base + path


Setup = Callable[[Any], None]
"""Called with the session before the steps (the same for both clients: ``session.auth = ...``)."""


def run_requests(base: str, steps: list[Step], verify: Any = False, setup: Setup | None = None) -> list[Outcome]:
    """The steps through one `requests.Session` (urllib3 underneath, as Locust's HttpUser)."""
    outcomes = []
    urllib3.disable_warnings()
    with requests.Session() as session:
        if setup is not None:
            setup(session)
        for step in steps:
            if step.think:
                time.sleep(step.think)
            kwargs = {"timeout": CLIENT_TIMEOUT, "verify": verify, **step.kwargs}
            try:
                r = session.request(step.method, _url(base, step.path), **kwargs)
            except requests.RequestException as exc:
                outcomes.append(Outcome(None, b"", True, f"{type(exc).__name__}: {exc}"))
                continue
            outcomes.append(Outcome(r.status_code, r.content, r.status_code >= 400))
    return outcomes


class _Calls:
    def __init__(self) -> None:
        self.errors: list[str | None] = []

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None:
        self.errors.append(error)


def run_loadgen(base: str, steps: list[Step], settings: ClientSettings | None = None,
                on_factory: Callable[[ClientFactory], None] | None = None, setup: Setup | None = None) -> list[Outcome]:
    """The steps through one loadgen `HttpSession` (its own keep-alive pool, as a user has)."""
    import gevent

    factory = ClientFactory(settings or ClientSettings(insecure=True, connect_timeout=CLIENT_TIMEOUT,
                                                       read_timeout=CLIENT_TIMEOUT), _Calls())
    session = factory.session("")
    if setup is not None:
        setup(session)
    outcomes = []
    try:
        for step in steps:
            if step.think:
                gevent.sleep(step.think)
            r = session.request(step.method, _url(base, step.path), **step.kwargs)
            status = r.status_code or None
            outcomes.append(Outcome(status, r.content if status else b"", r.error is not None, r.error or ""))
        if on_factory is not None:
            on_factory(factory)
    finally:
        factory.close_all()
    return outcomes


def seen_of(log: list[Any]) -> list[tuple[str, str, tuple[tuple[str, str], ...], bytes]]:
    return [(s.method, s.target, normalise_headers(s.headers), s.body) for s in log]


def compare(a: Run, b: Run, differs: frozenset[str]) -> list[str]:
    """The ways two runs differ, among "seen" (what the server got) and "outcomes" (what was reported:
    status, body and failed-or-not), minus the ones listed in `differs`."""
    diffs = []
    if "seen" not in differs and a.seen != b.seen:
        diffs.append(f"server saw\n  requests: {a.seen}\n  loadgen:  {b.seen}")
    if "outcomes" not in differs:
        left = [(o.status, o.body, o.failed) for o in a.outcomes]
        right = [(o.status, o.body, o.failed) for o in b.outcomes]
        if left != right:
            diffs.append(f"clients reported\n  requests: {a.outcomes}\n  loadgen:  {b.outcomes}")
    return diffs
