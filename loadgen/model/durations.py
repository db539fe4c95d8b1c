"""Parse human durations: ``30``, ``30s``, ``5m``, ``1h30m``, ``250ms``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``; raises ValueError with a hint when malformed."""
    if isinstance(text, (int, float)):
        return float(text)
    raw = text.strip().lower()
    try:
        return float(raw)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or not raw:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 5m, 1h30m or 250ms")
    return total
