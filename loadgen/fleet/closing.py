"""The master's last word on each worker when a test ends: its report row's state, its open events closed,
and a named line for every worker whose final numbers never arrived."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import gevent

from loadgen.fleet.intake import Intake
from loadgen.fleet.peers import ACTIVE, Peer, PeerState
from loadgen.stats.aggregate import Aggregate


def wait_for_finals(peers: Callable[[], Iterable[Peer]], timeout: float, heartbeat_timeout: float,
                    forced: Callable[[], bool], stop_now: Callable[[Peer], None]) -> None:
    """Wait for every running worker's final delta (its stop timeout, plus a margin); a worker lost meanwhile
    gets a few seconds to come back with it. A second Ctrl-C (``forced``) tells the waiting ones to stop now."""
    start = time.monotonic()
    deadline = start + timeout + heartbeat_timeout + 2.0
    lost_deadline = start + heartbeat_timeout + 1.0
    told = False
    while True:
        now = time.monotonic()
        waiting = [p for p in peers() if p.state in ACTIVE and not p.final]
        lost = [p for p in peers() if p.state == PeerState.LOST and p.started and not p.final]
        if now >= deadline or (not waiting and (not lost or now >= lost_deadline)):
            return
        if not told and timeout > 0 and forced():
            told = True
            for peer in waiting:
                stop_now(peer)
            deadline = min(deadline, now + heartbeat_timeout + 1.0)
        gevent.sleep(0.02)


DRAIN_TIMEOUT = 30.0  # seconds the report waits for deltas received but not merged yet


def drain(intake: Intake, aggregate: Aggregate) -> None:
    """Merge what has been received before the report is written; say so if the master cannot keep up."""
    left = intake.drain(DRAIN_TIMEOUT)
    if left:
        aggregate.warn("worker", f"the master could not merge {left} deltas it received within {DRAIN_TIMEOUT:g} s "
                       "of the end (it was overloaded): their requests are missing from this report; use fewer "
                       "worker processes per machine or a faster master", key="backlog")
    intake.merging = False


def close_accounts(peers: Iterable[Peer], aggregate: Aggregate, intake: Intake, end: float) -> None:
    for peer in peers:
        for row in aggregate.rows_of(peer.id):
            lost = row.lost_process or (peer.state == PeerState.LOST and not peer.final)
            row.state = "lost" if lost else "done"
        if peer.lost_event is not None:
            aggregate.close_event(peer.lost_event, end)
            peer.lost_event = None
        if peer.started and not peer.final:
            text = (f"worker {peer.id} ({peer.host}): its final numbers never arrived (the link was cut or the "
                    f"process died); requests it made after its last acknowledged delta "
                    f"(#{intake.acknowledged(peer)}) are missing from this report")
            aggregate.warn("worker", text, key=f"final:{peer.id}")
            aggregate.add_event("final missing", peer.id, end, end, peer.users, text)
