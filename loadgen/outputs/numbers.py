"""Number formatting shared by every output, so the console, the HTML report and JUnit show the same figures.

Every function takes any value: a missing, non-numeric or non-finite value (``None``, NaN, ``True``) shows as
``-`` (or counts as 0 where a total is expected), never raises.
"""

from __future__ import annotations

import math
from typing import Any

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def number_or_zero(value: Any) -> float:
    """``value`` as a finite float, 0.0 when it is missing or not a finite number."""
    v = as_number(value)
    return 0.0 if v is None else v


def rounded(value: float, digits: int = 3) -> int | float:
    """``value`` rounded to ``digits`` decimals, as an int when whole (no ``0.30000000000000004``)."""
    r = round(value, digits)
    return int(r) if r.is_integer() else r


def fmt_count(value: Any, grouping: bool = True) -> str:
    """A whole count (``48,000``; ``48000`` without ``grouping``); ``-`` if missing."""
    v = as_number(value)
    if v is None:
        return "-"
    return f"{round(v):,}" if grouping else str(round(v))


def fmt_float(value: Any, digits: int = 1, grouping: bool = True) -> str:
    """A decimal number with ``digits`` decimals (``1,234.5``); ``-`` if missing."""
    v = as_number(value)
    if v is None:
        return "-"
    return f"{v:,.{digits}f}" if grouping else f"{v:.{digits}f}"


def fmt_rate(value: Any) -> str:
    """Requests per second: one decimal, thousands separated."""
    return fmt_float(value, 1)


def fmt_ms(value: Any) -> str:
    """Milliseconds: 2 decimals below 10, whole numbers (thousands separated) from 10 up; ``-`` if missing."""
    v = as_number(value)
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 9.995 else f"{v:,.0f}"


def fmt_pct(part: Any, whole: Any) -> str:
    """``part`` as a percentage of ``whole``: 2 decimals below 10%, 1 from there (0.00% when ``whole`` is 0)."""
    p, w = number_or_zero(part), number_or_zero(whole)
    pct = 100.0 * p / w if w > 0 else 0.0
    return f"{pct:.2f}%" if pct < 9.995 else f"{pct:.1f}%"  # 9.996 % is 10.0 %, not 10.00 %


def fmt_bytes(value: Any) -> str:
    """A byte count in binary units: whole bytes, else one decimal (``1.5 MiB``)."""
    v = number_or_zero(value)
    for unit in BYTE_UNITS:
        if abs(v) < 1024 or unit == BYTE_UNITS[-1]:
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    raise AssertionError("unreachable")


def fmt_observed(value: Any) -> str:
    """A threshold's observed value: 4 significant digits (``29.4``, ``0.525``, ``1.235e+04``); ``-`` if none."""
    v = as_number(value)
    return "-" if v is None else f"{v:.4g}"


def fmt_duration(seconds: Any) -> str:
    """``12.3s`` below a minute, else ``4m05s`` / ``1h02m03s``."""
    s = number_or_zero(seconds)
    if s < 60:
        return f"{s:.1f}s"
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def fmt_clock(seconds: Any) -> str:
    """Elapsed time as ``MM:SS`` or ``H:MM:SS``."""
    h, rem = divmod(max(0, int(number_or_zero(seconds))), 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


PHASE_NAMES = (("dns", "DNS"), ("connect", "connect"), ("tls", "TLS"), ("ttfb", "TTFB"), ("body", "body"))


def phase_cell(phase: dict[str, Any] | None, requests: float) -> str:
    """p50/p95 ms of one phase, and how many requests paid it when that is not all of them."""
    if not phase:
        return "-"
    cell = f"{fmt_ms(phase.get('p50'))}/{fmt_ms(phase.get('p95'))}"
    count = number_or_zero(phase.get("count"))
    return cell if count >= requests else f"{cell} ({fmt_count(count)})"
