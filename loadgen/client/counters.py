"""Process-wide connection counters, read by the stats recorder as snapshots."""

from __future__ import annotations

from loadgen.model.counters import COUNTER_FIELDS

FIELDS = COUNTER_FIELDS


class ConnectionCounters:
    """Plain integer counters; the hot path increments attributes directly."""

    __slots__ = FIELDS
    opened: int
    closed: int
    tls_full: int
    tls_resumed: int
    dns_lookups: int
    dns_hits: int
    dns_failures: int
    requests: int
    bytes_sent: int
    bytes_received: int
    retries: int
    idle_dropped: int
    connect_fallbacks: int

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
