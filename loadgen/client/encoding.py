"""Encoding requests: the request line and header lines, cache keys for them, and bodies.

Pure functions of their arguments; `HttpSession` caches what `encode_head` returns, so this
runs once per distinct request shape, not per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .codings import ACCEPT_ENCODING

if TYPE_CHECKING:
    from .urls import Origin

BODYLESS_METHODS = frozenset(("GET", "HEAD"))
"""Methods sent without a Content-Length when they have no body; every other one says
``Content-Length: 0`` (as requests does)."""
IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))
"""Methods that may be sent again after the server may have read them (RFC 9110 section 9.2.2)."""


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


def form_pairs(data: Any) -> list[tuple[Any, Any]]:
    """(key, value) pairs of a mapping or of pairs, as requests encodes them: a list value gives one
    pair per item, a None value gives none, str becomes UTF-8."""
    items = data.items() if isinstance(data, Mapping) else data
    pairs: list[tuple[Any, Any]] = []
    for key, values in items:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = (values,)
        for value in values:
            if value is not None:
                pairs.append((key.encode() if isinstance(key, str) else key,
                              value.encode() if isinstance(value, str) else value))
    return pairs


def encode_data(data: Any) -> tuple[bytes, str | None]:
    """The body for `data=` (bytes, str, or a form mapping/pairs) and its implied Content-Type."""
    if isinstance(data, bytes):
        return data, None
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode(), None
    return urlencode(form_pairs(data), doseq=True).encode(), "application/x-www-form-urlencoded"


def with_query(target: str, params: Any) -> str:
    """`target` (path?query#fragment) with `params=` appended to its query, the fragment dropped."""
    if isinstance(params, bytes):
        query = params.decode()
    elif isinstance(params, str):
        query = params
    else:
        query = urlencode(form_pairs(params), doseq=True)
    if "#" in target:
        target = target.split("#", 1)[0]
    if not query:
        return target
    return f"{target}{'&' if '?' in target else '?'}{query}"


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SAFE = "!#$%&'()*+,/:;=?@[]~"  # what requests leaves as it is when it requotes a URL


def request_target(target: str) -> str:
    """The target as it goes on the wire: fragment dropped, every character outside the URL's
    reserved and unreserved set percent-encoded as UTF-8 (``é`` -> ``%C3%A9``, space -> ``%20``),
    and escapes of unreserved characters decoded (``%7E`` -> ``~``), as requests sends it."""
    if "#" in target:
        target = target.split("#", 1)[0]
    if "%" in target:
        parts = target.split("%")
        out = [parts[0]]
        for part in parts[1:]:
            code = part[:2]
            if len(code) == 2 and all(c in "0123456789abcdefABCDEF" for c in code) and chr(int(code, 16)) in _UNRESERVED:
                out.append(chr(int(code, 16)) + part[2:])
            else:
                out.append("%" + part)
        target = "".join(out)
    return quote(target, safe=_SAFE)


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
    drop: frozenset[str] = frozenset(),
) -> bytes:
    """Request line and header lines; `final` adds the blank line that ends a request without body.

    Fields in order: Host, User-Agent, Accept, then `defaults` (the session's headers) and
    `headers` (the request's), each overriding by case-insensitive name (a None value removes
    the field); `cookie` is appended to any Cookie field, `ctype` is the Content-Type unless one
    was given, and without `keep_alive` the request says ``Connection: close``. Without `final` the
    caller frames the body, so a Content-Length or Transfer-Encoding given in the headers is left out;
    `drop` names fields (lower case) left out whoever gave them. Through a proxy (`Origin.proxy`), a
    plain http request names its absolute URL and carries the proxy's credentials."""
    target = request_target(target)
    proxy = origin.proxy
    if proxy is not None and not origin.tls:  # to a proxy: the absolute URL (an https one tunnels instead)
        target = origin.prefix + target
    method = method.upper()
    fields: dict[str, tuple[str, str]] = {
        "host": ("Host", origin.host_header),
        "user-agent": ("User-Agent", user_agent),
        "accept-encoding": ("Accept-Encoding", ACCEPT_ENCODING),
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
    for name in drop:
        fields.pop(name, None)
    if proxy is not None and proxy.authorization and not origin.tls and "proxy-authorization" not in fields:
        fields["proxy-authorization"] = ("Proxy-Authorization", proxy.authorization)
    if not final:
        fields.pop("content-length", None)
        fields.pop("transfer-encoding", None)
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
