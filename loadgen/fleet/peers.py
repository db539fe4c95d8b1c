"""The master's view of each worker process: a small state machine with one writer (``Peer.move``)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from loadgen.fleet.link import shown_id
from loadgen.fleet.protocol import Rate, Target
from loadgen.model.health import CpuWatch


class PeerState(IntEnum):
    """idle → starting → running → done; any live state → lost (silent); starting → failed."""

    IDLE = 0  # connected, no test
    STARTING = 1  # sent the test, waiting for its answer
    RUNNING = 2  # runs its share
    DONE = 3  # finished the test (final delta or bye)
    LOST = 4  # silent for longer than the heartbeat timeout
    FAILED = 5  # could not start the test

    @property
    def label(self) -> str:
        """The name reports and workers rows show."""
        return self.name.lower()


ACTIVE = (PeerState.STARTING, PeerState.RUNNING)


class Peer:
    """One worker process as the master sees it."""

    __slots__ = ("identity", "id", "host", "processes", "has_script", "session", "last_seen", "_state", "users",
                 "cpu_percent", "cpu", "started", "final", "test_id", "run", "desired", "applied",
                 "lost_event")

    def __init__(self, identity: bytes, host: str, processes: int, now: float) -> None:
        self.identity = identity
        self.id = shown_id(identity)
        self.host = host
        self.processes = processes
        self.has_script = False
        self.session = ""
        self.last_seen = now
        self._state = PeerState.IDLE
        self.users = 0
        self.cpu_percent = 0.0
        self.cpu = CpuWatch()
        self.started = False
        self.final = False
        self.test_id = ""
        self.run = ""  # the worker's run of the test (its deltas are numbered per run)
        self.desired: Target | Rate | None = None  # repeated in every answer until the worker runs it
        self.applied = 0  # the desired-state version the worker says it runs
        self.lost_event: dict[str, Any] | None = None  # the report's open "lost" event

    @property
    def state(self) -> PeerState:
        return self._state

    def move(self, state: PeerState) -> PeerState:
        """The one place a peer's state changes; returns the state it left."""
        previous, self._state = self._state, state
        return previous
