"""A warning for the report: what happened, in one line, with a key that keeps it from repeating (pure)."""

from __future__ import annotations

from typing import NamedTuple


class Notice(NamedTuple):
    """``kind`` groups notices (cpu, stall, limits, …); the report keeps one per ``(kind, key)``."""

    kind: str
    message: str
    key: str
