"""A worker's part in a test as one small state machine (the worker is its one writer)."""

from __future__ import annotations

from enum import IntEnum


class SessionState(IntEnum):
    """This worker's part in a test: idle → running (⇄ fenced) → stopping → idle."""

    IDLE = 0
    RUNNING = 1
    STOPPING = 2
    FENCED = 3  # holds a test but its lease lapsed: no users run

    @property
    def label(self) -> str:
        """As heartbeats carry it to the master."""
        return self.name.lower()
