"""Connecting to a host with several addresses: Happy Eyeballs (RFC 8305), in greenlets.

The first address is tried at once; each next one when the one before failed, or when `ATTEMPT_DELAY` has
passed without an answer (a blackholed IPv6 route, a silent firewall), so a dead address costs 250 ms, not
the whole connect timeout. The first connection to complete wins; every other attempt is stopped and its
socket closed. Each move to a next address counts as a `connect_fallbacks`.
"""

from __future__ import annotations

import socket as _stdsocket
from time import perf_counter

import gevent
from gevent import socket as gsocket
from gevent.queue import Empty, Queue

from .counters import COUNTERS
from .errors import ConnectTimeout

ATTEMPT_DELAY = 0.25
"""RFC 8305's recommended Connection Attempt Delay: start the next address after this long."""


def open_socket(addr: str, port: int, timeout: float | None) -> gsocket.socket:
    """A TCP connection to one address, TCP_NODELAY set; the socket is closed if it fails."""
    family = _stdsocket.AF_INET6 if ":" in addr else _stdsocket.AF_INET
    sock = gsocket.socket(family, _stdsocket.SOCK_STREAM)
    try:
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        sock.connect((addr, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _attempt(addr: str, port: int, timeout: float | None, results: Queue) -> None:
    try:
        results.put((addr, open_socket(addr, port, timeout), None))
    except Exception as exc:  # noqa: BLE001 - every failure is a result (GreenletExit is not an Exception)
        results.put((addr, None, exc))


def race(host: str, port: int, addrs: list[str], timeout: float | None) -> gsocket.socket:
    """Connect to the first of `addrs` that accepts, staggered as RFC 8305 says; raises the last failure,
    or `ConnectTimeout` once `timeout` has passed with no connection."""
    deadline = None if timeout is None else perf_counter() + timeout
    results: Queue = Queue()
    attempts: list[gevent.Greenlet] = []
    failure: BaseException | None = None
    pending = 0
    try:
        for n in range(len(addrs) + 1):
            if n < len(addrs):
                if n:
                    COUNTERS.connect_fallbacks += 1
                attempts.append(gevent.spawn(_attempt, addrs[n], port, timeout, results))
                pending += 1
            while pending:
                left = None if deadline is None else deadline - perf_counter()
                wait = left if n >= len(addrs) - 1 else (ATTEMPT_DELAY if left is None else min(ATTEMPT_DELAY, left))
                if wait is not None and wait <= 0:
                    raise ConnectTimeout(f"connect to {host}:{port} ({', '.join(addrs)}) timed out after {timeout} s")
                try:
                    _, sock, exc = results.get(timeout=wait)
                except Empty:
                    if n >= len(addrs) - 1:
                        continue  # every address started: wait on until the deadline
                    break  # no answer within the delay: start the next address too
                pending -= 1
                if sock is not None:
                    return sock
                failure = exc
                break  # a failure: start the next address now
        if isinstance(failure, TimeoutError):
            raise ConnectTimeout(f"connect to {host}:{port} ({', '.join(addrs)}) timed out after {timeout} s")
        assert failure is not None
        raise failure
    finally:
        gevent.killall([a for a in attempts if not a.dead], block=True)
        while not results.empty():  # a loser that connected after all
            _, sock, _ = results.get_nowait()
            if sock is not None:
                sock.close()
