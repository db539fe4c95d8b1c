"""Process-wide connection counters, read by the stats recorder as snapshots."""

from __future__ import annotations

FIELDS: tuple[str, ...] = (
    "opened",
    "closed",
    "tls_full",
    "tls_resumed",
    "dns_lookups",
    "dns_hits",
    "dns_failures",
    "requests",
    "bytes_sent",
    "bytes_received",
)


class ConnectionCounters:
    """Plain integer counters; the hot path increments attributes directly."""

    __slots__ = FIELDS

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Set every counter to zero."""
        for f in FIELDS:
            setattr(self, f, 0)

    def snapshot(self) -> dict[str, int]:
        """Current values as a plain dict (the recorder diffs two snapshots)."""
        return {f: getattr(self, f) for f in FIELDS}

    def __repr__(self) -> str:
        return f"ConnectionCounters({self.snapshot()})"


COUNTERS = ConnectionCounters()
