"""The master's count of its fleet before a test: machines (a ``--processes N`` group counts once, as
Ansible and Kubernetes count hosts and pods) or, on request, processes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent

from loadgen.fleet.peers import Peer, PeerState
from loadgen.model.errors import UsageError


def ready_count(peers: Iterable[Peer], processes: bool) -> int:
    """Connected idle workers: machines (each peer is one: a --processes N machine speaks for its processes),
    or their processes."""
    ready = [p for p in peers if p.state == PeerState.IDLE]
    return sum(p.processes for p in ready) if processes else len(ready)


def wait_for(peers: Callable[[], Iterable[Peer]], count: int, timeout: float, endpoint: str,
             stop: Any = None, processes: bool = False) -> None:
    """Wait until ``count`` are ready; ``UsageError`` after ``timeout`` or when ``stop`` (an event) is set."""
    deadline = time.monotonic() + timeout
    announced = -1
    what = "worker processes" if processes else "workers"
    while True:
        if stop is not None and stop.is_set():
            raise UsageError("stopped before the workers connected")
        ready = ready_count(peers(), processes)
        if ready != announced:
            announced = ready
            print(f"loadgen master: {ready}/{count} {what} connected on {endpoint}", file=sys.stderr, flush=True)
        if ready >= count:
            return
        if time.monotonic() >= deadline:
            flag = "--expect-processes" if processes else "--expect-workers"
            raise UsageError(f"only {ready} of {count} {what} connected within {timeout:g} s: start more "
                             f"'loadgen worker --master HOST' processes, check the port is reachable, or lower {flag}")
        gevent.sleep(0.05)
