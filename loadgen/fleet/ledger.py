"""The master's record of which deltas of a worker it has merged (pure: no sockets).

A worker numbers its deltas 1, 2, 3... and may send one again (after a reconnect or a lost
acknowledgement). The ledger merges each number exactly once and in order; the acknowledgement is the
highest number with none missing below it.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    MERGE = "merge"  # new: merge it
    DUPLICATE = "duplicate"  # merged before: drop it
    EARLY = "early"  # one before it is missing: drop it, the worker sends both again
    OVERLAP = "overlap"  # a merged run that covers numbers merged before: cannot be split, reported


class Ledger:
    """Per worker and test: the next delta number expected."""

    __slots__ = ("next_seq", "duplicates", "early", "overlaps")

    def __init__(self) -> None:
        self.next_seq = 1
        self.duplicates = 0
        self.early = 0
        self.overlaps = 0

    def judge(self, first: int, last: int) -> Verdict:
        if last < first or first < 1:
            return Verdict.OVERLAP
        if last < self.next_seq:
            self.duplicates += 1
            return Verdict.DUPLICATE
        if first > self.next_seq:
            self.early += 1
            return Verdict.EARLY
        if first < self.next_seq:
            self.overlaps += 1
            self.next_seq = last + 1
            return Verdict.OVERLAP
        self.next_seq = last + 1
        return Verdict.MERGE

    @property
    def acknowledged(self) -> int:
        return self.next_seq - 1
