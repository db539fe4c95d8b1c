"""What the master tells a worker about its standing: the Ack to a heartbeat, and the lines it prints when a
worker falls silent or the master itself stalled (pure: no sockets)."""

from __future__ import annotations

from loadgen.fleet.peers import Peer, PeerState
from loadgen.fleet.protocol import Ack, Heartbeat, as_map

NO_LEASE = -1.0  # the master does not count this worker in (lost after the test, done, idle): run nothing


def answer(peer: Peer, beat: Heartbeat | None, clock: float, acknowledged: int, lease: float, test_id: str,
           master_id: str) -> Ack:
    """Renews the lease (when it answers a heartbeat of a worker the master counts as running), acknowledges
    deltas up to ``acknowledged``, and repeats the worker's desired state until it says it runs it."""
    desired = peer.desired
    repeat = desired is not None and peer.applied < desired.version and peer.state == PeerState.RUNNING
    granted = lease if peer.state in (PeerState.RUNNING, PeerState.STARTING) else NO_LEASE
    return Ack(seq=beat.seq if beat is not None else 0, sent=beat.sent if beat is not None else 0.0, clock=clock,
               stats=acknowledged, lease=granted, test_id=test_id, master_id=master_id,
               desired=as_map(desired) if repeat and desired is not None else {})


def lost_text(peer: Peer, now: float, running: bool) -> str:
    where = "its users go to the other workers" if running else "its last numbers may be missing"
    return (f"worker {peer.id} ({peer.host}) lost: silent for {now - peer.last_seen:.1f} s; it stopped its "
            f"{peer.users} users when its lease lapsed; {where}")


def pause_text(pause: tuple[float, float]) -> str:
    return (f"the master did not run for {pause[1] - pause[0]:.1f} s (stopped or starved); workers stopped their "
            "users meanwhile (their leases lapsed) and resume now")
