"""Following redirects: the loop after a 3xx, one new exchange per hop.

`follow` is given the session's pieces as callables (encode a head, exchange it, resolve a
URL), so it needs nothing of the session class itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any
from urllib.parse import urljoin

from .encoding import BODY_METHODS
from .errors import ProtocolError
from .http11 import status_error
from .response import Headers
from .urls import Origin

REDIRECTS = frozenset((301, 302, 303, 307, 308))
"""Statuses that are followed (with `allow_redirects`)."""

Exchange = Callable[[Origin, bytes, str, float | None, float | None, float], tuple[int, bytes, bytes, int, bool]]
"""(origin, wire, method, connect timeout, read timeout, t0) -> (status, head, body, bytes received, truncated)."""
EncodeHead = Callable[[str, str, Origin, Mapping[str, Any] | None, str | None], bytes]
"""(method, target, origin, headers, content type) -> request line and header lines, no blank line."""
Resolve = Callable[[str], tuple[Origin, str]]
"""URL -> (origin, target)."""

Outcome = tuple[int, bytes, bytes, int, bool, Origin, str, str | None]
"""(status, head, body, bytes received, truncated, origin, target, error) of the last hop."""


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
    truncated: bool,
    ct: float | None,
    rt: float | None,
) -> Outcome:
    """Follow redirects (at most `max_redirects`) from the response given; returns the final
    exchange and where it went. 303 (and 301/302 after a POST) continue as a GET without body."""
    for _ in range(max_redirects):
        location = Headers.parse(head).get("location")
        if not location:
            break
        url = urljoin(origin.prefix + target, location.strip())
        try:
            origin, target = resolve(url)
        except ValueError as exc:
            raise ProtocolError(f"cannot follow redirect to {location!r}: {exc}") from None
        if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
            method, body, ctype = "GET", None, None
        pre = encode_head(method, target, origin, headers, ctype)
        if body is not None:
            wire = b"%sContent-Length: %d\r\n\r\n%s" % (pre, len(body), body)
        elif method in BODY_METHODS:
            wire = pre + b"Content-Length: 0\r\n\r\n"
        else:
            wire = pre + b"\r\n"
        status, head, rbody, n, truncated = exchange(origin, wire, method, ct, rt, perf_counter())
        nbytes += n
        if status not in REDIRECTS:
            error = None if status < 400 else status_error(status, head)
            return status, head, rbody, nbytes, truncated, origin, target, error
    else:
        return status, head, rbody, nbytes, truncated, origin, target, (
            f"TooManyRedirects: more than {max_redirects} redirects"
        )
    error = None if status < 400 else status_error(status, head)
    return status, head, rbody, nbytes, truncated, origin, target, error
