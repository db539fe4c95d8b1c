"""Names of the connection counters that every process keeps and every delta carries (pure)."""

from __future__ import annotations

COUNTER_FIELDS: tuple[str, ...] = (
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
    "retries",
    "idle_dropped",
    "connect_fallbacks",
)
"""`retries`: requests sent again on a new connection after a reused one failed (only when safe: the
request never left, or its method is idempotent); `idle_dropped`: pooled connections found closed by
the server before reuse (never a failed request); `connect_fallbacks`: connects that moved on to the
next resolved address after one failed."""
