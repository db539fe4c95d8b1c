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
    """Connected idle workers: processes, or machines (groups whose every process is ready)."""
    ready = [p for p in peers if p.state == PeerState.IDLE]
    if processes:
        return len(ready)
    members: dict[str, int] = {}
    size: dict[str, int] = {}
    for peer in ready:
        group = peer.group or peer.id
        members[group] = members.get(group, 0) + 1
        size[group] = peer.processes
    return sum(1 for group, count in members.items() if count >= size[group])


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
