"""The master's last word on each worker when a test ends: its report row's state, its open events closed,
and a named line for every worker whose final numbers never arrived."""

from __future__ import annotations

from collections.abc import Iterable

from loadgen.fleet.intake import Intake
from loadgen.fleet.peers import Peer, PeerState
from loadgen.stats.aggregate import Aggregate

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
