"""Plain-text building blocks: safe one-line text, aligned tables and section rules (display-width aware)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len

MAX_NAME_CELLS = 60  # endpoint names
MAX_ERROR_CELLS = 120  # error messages
RULE_WIDTH = 56  # width of a section rule


def clean_text(value: Any, max_cells: int | None = None) -> str:
    """One printable line: control characters (newlines, ANSI escapes) neutralised, optionally clipped."""
    out = []
    for ch in str(value if value is not None else ""):
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200d":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out)
    if max_cells is not None and cell_len(text) > max_cells:
        clipped, width = [], 0
        for ch in text:
            w = cell_len(ch)
            if width + w > max_cells - 1:
                break
            clipped.append(ch)
            width += w
        text = "".join(clipped) + "…"
    return text


def pad(text: str, width: int, right: bool) -> str:
    """``text`` padded with spaces to ``width`` display cells, on the left when ``right``-aligned."""
    gap = " " * max(0, width - cell_len(text))
    return gap + text if right else text + gap


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool], indent: str = ""
) -> list[str]:
    """Align ``rows`` under ``headers`` (two-space gutters, display-width aware); returns the lines."""
    widths = [cell_len(h) for h in headers]
    for row in rows:
        widths = [max(w, cell_len(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        return (indent + "  ".join(pad(c, w, r) for c, w, r in zip(cells, widths, right))).rstrip()

    return [line(headers), indent + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def rule(title: str) -> str:
    """A section heading: ``--- Title ------``."""
    return f"--- {title} " + "-" * max(3, RULE_WIDTH - len(title) - 5)


def warning_text(warning: Any) -> str:
    """A run warning (a ``{"kind", "message"}`` dict or plain text) as one safe line: ``[kind] message``."""
    if isinstance(warning, dict):
        kind = warning.get("kind")
        msg = clean_text(warning.get("message", ""), 400)
        return f"[{clean_text(kind, 30)}] {msg}" if kind else msg
    return clean_text(warning, 400)
