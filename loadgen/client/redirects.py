"""Following redirects: the loop after a 3xx, one new exchange per hop.

`follow` is given the session's pieces as callables (encode a head, exchange it, resolve a
URL), so it needs nothing of the session class itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, Protocol
from urllib.parse import urljoin

from .encoding import BODYLESS_METHODS
from .errors import ProtocolError
from .http11 import status_error
from .response import Headers, Response
from .urls import Origin

REDIRECTS = frozenset((301, 302, 303, 307, 308))
"""Statuses that are followed (with `allow_redirects`)."""
CREDENTIALS = frozenset(("authorization", "cookie", "proxy-authorization"))
"""Request fields not sent on to another host."""
_COOKIE = frozenset(("cookie",))


def strips_credentials(old: Origin, new: Origin) -> bool:
    """Whether a redirect from `old` to `new` must drop the request's credentials (as requests does)."""
    if old.host != new.host:
        return True
    if old.scheme == "http" and new.scheme == "https" and old.port == 80 and new.port == 443:
        return False
    return old.scheme != new.scheme or old.port != new.port

Exchange = Callable[[Origin, bytes, str, float | None, float | None, float], tuple[int, bytes, bytes, int, int]]
"""(origin, wire, method, connect timeout, read timeout, t0) -> (status, head, body, bytes received, flags)."""
class EncodeHead(Protocol):
    """(method, target, origin, headers, content type, drop=fields) -> request line and header lines, no
    blank line."""

    def __call__(self, method: str, target: str, origin: Origin, headers: Mapping[str, Any] | None,
                 ctype: str | None, *, drop: frozenset[str] = ...) -> bytes: ...
Resolve = Callable[[str], tuple[Origin, str]]
"""URL -> (origin, target)."""

Outcome = tuple[int, bytes, bytes, int, int, Origin, str, str | None, bytes, list[Response]]
"""(status, head, body, bytes received, flags, origin, target, error, request sent) of the last hop, and the
redirect responses before it (``response.history``)."""


def follow(
    exchange: Exchange,
    encode_head: EncodeHead,
    resolve: Resolve,
    max_redirects: int,
    method: str,
    origin: Origin,
    target: str,
    headers: Mapping[str, Any] | None,
    body: bytes | None,
    ctype: str | None,
    status: int,
    head: bytes,
    rbody: bytes,
    nbytes: int,
    flags: int,
    ct: float | None,
    rt: float | None,
    wire: bytes = b"",
) -> Outcome:
    """Follow redirects (at most `max_redirects`) from the response given; returns the final
    exchange and where it went. 303 (and 301/302 after a POST) continue as a GET without body.
    A ``Cookie`` given as a header is not sent on (the jar's cookies go to the hosts that set them),
    and once a hop leaves the original host (or changes scheme or port, except http to https on the
    default ports) neither is ``Authorization``, as in requests. `wire` is the request that got the
    response given."""
    drop: frozenset[str] = frozenset()
    history: list[Response] = []
    for _ in range(max_redirects):
        history.append(Response(status, head, rbody, 0, 0, None, origin.prefix, target, method, "", wire))
        location = Headers.parse(head).get("location")
        if not location:
            break
        url = urljoin(origin.prefix + target, location.strip())
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            raise ProtocolError(f"cannot follow redirect to {location!r}: not an http(s) URL")
        try:
            new_origin, target = resolve(url)
        except ValueError as exc:
            raise ProtocolError(f"cannot follow redirect to {location!r}: {exc}") from None
        drop = drop | (CREDENTIALS if strips_credentials(origin, new_origin) else _COOKIE)
        origin = new_origin
        if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
            method, body, ctype = "GET", None, None
        pre = encode_head(method, target, origin, headers, ctype, drop=drop)
        if body is not None:
            wire = b"%sContent-Length: %d\r\n\r\n%s" % (pre, len(body), body)
        elif method not in BODYLESS_METHODS:
            wire = pre + b"Content-Length: 0\r\n\r\n"
        else:
            wire = pre + b"\r\n"
        status, head, rbody, n, flags = exchange(origin, wire, method, ct, rt, perf_counter())
        nbytes += n
        if status not in REDIRECTS:
            error = None if status < 400 else status_error(status, head)
            return status, head, rbody, nbytes, flags, origin, target, error, wire, history
    else:
        return status, head, rbody, nbytes, flags, origin, target, (
            f"TooManyRedirects: more than {max_redirects} redirects"
        ), wire, history
    history.pop()  # a redirect without Location: the response itself
    error = None if status < 400 else status_error(status, head)
    return status, head, rbody, nbytes, flags, origin, target, error, wire, history
