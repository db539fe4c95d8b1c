"""Error messages: normalisation into a small set of shapes, and a table capped per endpoint."""

from __future__ import annotations

import re
from typing import Any

MAX_ERRORS_PER_ENDPOINT = 50
OTHER_ERRORS = "other errors"
MAX_MESSAGE_LENGTH = 300
OTHER_SAMPLES = 3  # messages an endpoint's "other errors" row keeps as examples

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\bat 0x[0-9a-fA-F]+\b"), "at <addr>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\[?\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b\]?(?::\d+)?"), "<ip>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<hex>"),
    (re.compile(r"(?<![A-Za-z_])\d+(?:\.\d+)?"), "<n>"),
]
# Error numbers and HTTP statuses carry meaning; keep them.
_KEEP = re.compile(r"\[Errno \d+\]|^HTTP \d{3}|\b[1-5]\d\d\b(?= [A-Z])")


def normalise(message: str) -> str:
    """Replace the variable parts of a message (ids, numbers, addresses) with placeholders."""
    message = message.strip().replace("\n", " ")
    if len(message) > MAX_MESSAGE_LENGTH * 4:
        message = message[: MAX_MESSAGE_LENGTH * 4]
    kept: list[str] = []

    def _stash(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return "\x00" + chr(0xE000 + len(kept) - 1) + "\x00"

    message = _KEEP.sub(_stash, message)
    for pattern, placeholder in _PATTERNS:
        message = pattern.sub(placeholder, message)
    if kept:
        message = re.sub("\x00(.)\x00", lambda m: kept[ord(m.group(1)) - 0xE000], message)
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
    return message


class ErrorTable:
    """Counts of normalised errors per (method, name), at most ``cap`` distinct messages each."""

    __slots__ = ("cap", "counts", "samples", "_distinct", "_cache")

    def __init__(self, cap: int = MAX_ERRORS_PER_ENDPOINT) -> None:
        self.cap = cap
        self.counts: dict[tuple[str, str, str], int] = {}
        self.samples: dict[tuple[str, str], list[str]] = {}  # a few messages counted under "other errors"
        self._distinct: dict[tuple[str, str], int] = {}
        self._cache: dict[str, str] = {}

    def add(self, method: str, name: str, message: str, count: int = 1, normalised: bool = False) -> None:
        if not normalised:
            text = self._cache.get(message)
            if text is None:
                text = normalise(message)
                if len(self._cache) > 1024:
                    self._cache.clear()
                self._cache[message] = text
            message = text
        key = (method, name, message)
        counts = self.counts
        if key in counts:
            counts[key] += count
            return
        endpoint = (method, name)
        distinct = self._distinct.get(endpoint, 0)
        if distinct >= self.cap and message != OTHER_ERRORS:
            key = (method, name, OTHER_ERRORS)
            counts[key] = counts.get(key, 0) + count
            self.sample(endpoint, message)
            return
        if message != OTHER_ERRORS:
            self._distinct[endpoint] = distinct + 1
        counts[key] = count

    def sample(self, endpoint: tuple[str, str], message: str) -> None:
        """Keep ``message`` as an example of the endpoint's other errors (the first few distinct ones)."""
        kept = self.samples.get(endpoint)
        if kept is None:
            self.samples[endpoint] = [message]
        elif len(kept) < OTHER_SAMPLES and message not in kept:
            kept.append(message)

    def merge(self, other: ErrorTable) -> None:
        for endpoint, messages in other.samples.items():
            for message in messages:
                self.sample(endpoint, message)
        for (method, name, message), count in other.counts.items():
            self.add(method, name, message, count, normalised=True)

    def total(self) -> int:
        return sum(self.counts.values())

    def __len__(self) -> int:
        return len(self.counts)

    def rows(self) -> list[dict[str, Any]]:
        """Rows for the report, most frequent first."""
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        rows: list[dict[str, Any]] = []
        for (method, name, message), count in ordered:
            row: dict[str, Any] = {"method": method, "name": name, "error": message, "count": count}
            if message == OTHER_ERRORS:
                row["samples"] = list(self.samples.get((method, name), ()))
            rows.append(row)
        return rows

    def capped(self) -> list[tuple[str, str, int]]:
        """Endpoints whose distinct messages passed the cap, with how many errors went to "other errors"."""
        counts = self.counts
        return [(method, name, counts.get((method, name, OTHER_ERRORS), 0)) for method, name in self.samples]
