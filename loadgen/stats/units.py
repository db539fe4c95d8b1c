"""Microseconds as the milliseconds reports show (pure)."""

from __future__ import annotations


def ms(us: int | float) -> float:
    """Microseconds → milliseconds, rounded to the microsecond."""
    return round(us / 1000.0, 3)
