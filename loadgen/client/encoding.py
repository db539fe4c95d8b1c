"""Encoding requests: the request line and header lines, cache keys for them, and bodies.

Pure functions of their arguments; `HttpSession` caches what `encode_head` returns, so this
runs once per distinct request shape, not per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from .urls import Origin

BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
"""Methods that always send a Content-Length (0 without a body)."""


def headers_key(headers: Mapping[str, Any] | None) -> Any:
    """A hashable stand-in for per-request headers (None if they cannot be a cache key)."""
    if not headers:
        return None
    items = tuple(headers.items())
    try:
        hash(items)
    except TypeError:
        return object()  # unique: never hits, bounded by the cache size
    return items


def check_header(name: str, value: str) -> None:
    """Refuse a header that would split the request (CR, LF, or a colon in the name)."""
    if "\r" in name or "\n" in name or ":" in name or "\r" in value or "\n" in value:
        raise ValueError(f"invalid header {name!r}: {value!r}")


def encode_data(data: Any) -> tuple[bytes, str | None]:
    """The body for `data=` (bytes, str, or a form mapping/pairs) and its implied Content-Type."""
    if isinstance(data, bytes):
        return data, None
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode(), None
    return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"


def encode_head(
    method: str,
    target: str,
    origin: Origin,
    user_agent: str,
    defaults: Mapping[str, Any] | None,
    headers: Mapping[str, Any] | None,
    cookie: str | None,
    ctype: str | None,
    keep_alive: bool,
    final: bool = False,
) -> bytes:
    """Request line and header lines; `final` adds the blank line that ends a request without body.

    Fields in order: Host, User-Agent, Accept, then `defaults` (the session's headers) and
    `headers` (the request's), each overriding by case-insensitive name (a None value removes
    the field); `cookie` is appended to any Cookie field, `ctype` is the Content-Type unless one
    was given, and without `keep_alive` the request says ``Connection: close``."""
    if " " in target or "\r" in target or "\n" in target:
        target = target.replace(" ", "%20").replace("\r", "%0D").replace("\n", "%0A")
    fields: dict[str, tuple[str, str]] = {
        "host": ("Host", origin.host_header),
        "user-agent": ("User-Agent", user_agent),
        "accept": ("Accept", "*/*"),
    }
    for src in (defaults, headers):
        if src:
            for k, v in src.items():
                if v is None:
                    fields.pop(k.lower(), None)
                    continue
                v = str(v)
                check_header(k, v)
                fields[k.lower()] = (k, v)
    if cookie is not None:
        old = fields.get("cookie")
        fields["cookie"] = ("Cookie", f"{old[1]}; {cookie}" if old else cookie)
    if ctype is not None and "content-type" not in fields:
        fields["content-type"] = ("Content-Type", ctype)
    if not keep_alive:
        fields["connection"] = ("Connection", "close")
    lines = [f"{method} {target} HTTP/1.1"]
    lines.extend(f"{k}: {v}" for k, v in fields.values())
    lines.append("")
    if final:
        lines.append("")
    return "\r\n".join(lines).encode("latin-1", errors="strict")
