"""Client configuration: one frozen dataclass shared by every session of a process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DNS_SELECT = ("first", "random", "round-robin")
POOL_MODES = ("user", "shared")


@dataclass(frozen=True)
class ClientSettings:
    """Settings for `ClientFactory`; the first block is the contract in docs/contracts.md."""

    insecure: bool = False
    ca_bundle: str | None = None
    connect_timeout: float | None = 10.0
    read_timeout: float | None = 60.0
    tls_resume: bool = True
    tls_max: str | None = None  # "1.2": resumptions without a new key exchange (docs/connections.md)
    dns_ttl: float = 300.0
    dns_select: str = "round-robin"
    dns_ipv6: bool = False
    dns_server: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    pool: str = "user"
    pool_size: int = 10
    # extras (defaults keep the contract's behaviour)
    dns_negative_ttl: float = 5.0  # how long a failed lookup is remembered
    idle_timeout: float = 60.0  # pooled connections idle longer are closed; 0 = never
    max_body: int = 64 * 1024 * 1024  # bytes of a body kept in memory; the rest is read and dropped
    max_redirects: int = 10
    user_agent: str = "loadgen/0.1"

    def __post_init__(self) -> None:
        if self.dns_select not in DNS_SELECT:
            raise ValueError(f"dns_select must be one of {DNS_SELECT}, not {self.dns_select!r}")
        if self.pool not in POOL_MODES:
            raise ValueError(f"pool must be one of {POOL_MODES}, not {self.pool!r}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, not {self.pool_size}")
        if self.dns_ttl < 0 or self.dns_negative_ttl < 0:
            raise ValueError("dns_ttl and dns_negative_ttl must be >= 0")
        if self.max_body < 0:
            raise ValueError("max_body must be >= 0")
        if (self.client_key is not None) and (self.client_cert is None):
            raise ValueError("client_key needs client_cert")


def _seconds(value: Any, which: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{which} timeout must be a number of seconds or None, not {value!r}")
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{which} timeout must be > 0 seconds (or None for no limit), not {value!r}")
    return float(value)


def timeouts(timeout: Any) -> tuple[float | None, float | None]:
    """(connect, read) from a request's ``timeout=``: seconds for both, a (connect, read) pair, or None.

    Zero, negative and non-numeric values are refused with `ValueError`/`TypeError`, as requests does."""
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be seconds or a (connect, read) pair, not {timeout!r}")
        return _seconds(timeout[0], "connect"), _seconds(timeout[1], "read")
    seconds = _seconds(timeout, "request")
    return seconds, seconds
