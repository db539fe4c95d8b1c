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
)
