"""The cookie jar: the standard library's `http.cookiejar` (as requests' `RequestsCookieJar`), read like a
dict, with a change hook for the session's cache of encoded request heads.

Domain, Path, Secure, Max-Age and Expires are the standard library's rules (what requests sends), except
that a cookie set without a Domain goes back to its own host only (RFC 6265's host-only flag, which
`http.cookiejar` would also send to sub-domains). A cookie set by the script without a host or domain goes
to every host, as in requests.
"""

from __future__ import annotations

import copy
import http.cookiejar
from collections.abc import Callable, Mapping
from time import time
from typing import Any

INF = float("inf")


class _Policy(http.cookiejar.DefaultCookiePolicy):
    """The standard policy, with host-only cookies sent to their host only."""

    def return_ok_domain(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        if not cookie.domain:  # set by the script for every host
            return True
        return super().return_ok_domain(cookie, request)


POLICY = _Policy(strict_ns_domain=http.cookiejar.DefaultCookiePolicy.DomainStrictNonDomain)
"""One policy for every jar (it holds no state between calls, and greenlets do not preempt inside one)."""


class _CookieRequest:
    """What `http.cookiejar` reads of a `urllib.request.Request`: the URL, and where the Cookie goes."""

    __slots__ = ("url", "type", "host", "cookie")
    unverifiable = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.type, _, rest = url.partition("://")
        self.host = rest.split("/", 1)[0].split("?", 1)[0]
        self.cookie: str | None = None

    @property
    def origin_req_host(self) -> str:
        return http.cookiejar.request_host(self)  # type: ignore[attr-defined]

    def get_full_url(self) -> str:
        return self.url

    def has_header(self, name: str) -> bool:
        return False

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return default

    def header_items(self) -> list[tuple[str, str]]:
        return []

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name == "Cookie":
            self.cookie = value


class _SetCookies:
    """What `http.cookiejar` reads of a response: its header fields, from the raw head."""

    __slots__ = ("_fields",)

    def __init__(self, head: bytes) -> None:
        self._fields = [line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:]]

    def info(self) -> _SetCookies:
        return self

    def get_all(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        found = [value.strip() for k, sep, value in self._fields if sep and k.strip().lower() == name]
        return found or default


def _erhn(host: str) -> str:
    """The effective request-host name `http.cookiejar` files a host-only cookie under."""
    netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return http.cookiejar.eff_request_host(_CookieRequest(f"http://{netloc}/"))[1]  # type: ignore[attr-defined]


def _matches(cookie: http.cookiejar.Cookie, host: str | None, domain: str | None, path: str | None) -> bool:
    """Whether `cookie` is one `host` would be sent (any path), or is filed under `domain`/`path`."""
    if domain is not None and cookie.domain != domain:
        return False
    if path is not None and cookie.path != path:
        return False
    if host is None or not cookie.domain:
        return True
    erhn = _erhn(host)
    if not cookie.domain_specified:
        return cookie.domain == erhn
    dotted = cookie.domain if cookie.domain.startswith(".") else "." + cookie.domain
    return ("." + erhn).endswith(dotted)


def _as_sent(cookie: http.cookiejar.Cookie) -> tuple[Any, ...]:
    return (cookie.value, cookie.secure, cookie.port, cookie.version, cookie.domain_specified)


def make_cookie(name: str, value: Any, host: str | None = None, domain: str | None = None, path: str | None = None,
                secure: bool = False, expires: int | None = None) -> http.cookiejar.Cookie:
    """A cookie for `host` only, for `domain` and its sub-domains, or (neither given) for every host."""
    if host is not None and domain is None:
        domain, specified = _erhn(host.lower()), False
    else:
        domain, specified = domain or "", bool(domain)
    return http.cookiejar.Cookie(
        0, name, value if value is None or isinstance(value, str) else str(value), None, False, domain, specified,
        domain.startswith("."), path or "/", True, secure, expires, expires is None, None, None, {},
    )


class CookieJar(http.cookiejar.CookieJar):
    """Cookies received (and sent back), dict-like as requests' jar; `on_change` runs whenever what
    would be sent may have changed, and `expires_at` is when the first cookie in it expires."""

    _cookies: dict[str, dict[str, dict[str, http.cookiejar.Cookie]]]  # the standard jar's: domain -> path -> name

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        super().__init__(POLICY)
        self.on_change = on_change
        self.expires_at = INF

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- changes (every way in goes through these two) ---------------------------------------
    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        old = self._cookies.get(cookie.domain, {}).get(cookie.path, {}).get(cookie.name)
        super().set_cookie(cookie)
        changed = old is None or _as_sent(old) != _as_sent(cookie)
        if cookie.expires is not None and cookie.expires < self.expires_at:
            self.expires_at = cookie.expires
            changed = True
        if changed:
            self._changed()

    def clear(self, domain: str | None = None, path: str | None = None, name: str | None = None) -> None:
        if domain is None and not len(self):
            return
        super().clear(domain, path, name)
        self._changed()

    def expire(self) -> None:
        """Drop the cookies past their time; the next one to expire sets `expires_at`."""
        self.clear_expired_cookies()
        self.expires_at = min((c.expires for c in self if c.expires is not None), default=INF)
        self._changed()

    # -- what the session sends and receives -------------------------------------------------
    def header(self, url: str) -> str | None:
        """The Cookie header value for a request to `url` (scheme, host, path), or None."""
        if not self._cookies:
            return None
        request = _CookieRequest(url)
        self.add_cookie_header(request)  # type: ignore[arg-type]
        return request.cookie

    def extract(self, url: str, head: bytes) -> None:
        """Apply every Set-Cookie field of a response head to the request for `url`."""
        self.extract_cookies(_SetCookies(head), _CookieRequest(url))  # type: ignore[arg-type]

    # -- loadgen's and requests' API ----------------------------------------------------------
    def set(self, name: str, value: Any, host: str | None = None, *, domain: str | None = None,
            path: str | None = None, secure: bool = False, expires: int | None = None) -> http.cookiejar.Cookie | None:
        """Set a cookie for `host` only, for `domain` (and its sub-domains), or for every host; a None
        value deletes it (as requests)."""
        if value is None:
            self.delete(name, host, domain=domain, path=path)
            return None
        cookie = make_cookie(name, value, host, domain, path, secure, expires)
        self.set_cookie(cookie)
        return cookie

    def get(self, name: str, host: str | None = None, default: Any = None, *, domain: str | None = None,
            path: str | None = None) -> Any:
        """The value of the first cookie `name` that `host` would be sent (any host if None)."""
        for cookie in self:
            if cookie.name == name and _matches(cookie, host, domain, path):
                return cookie.value
        return default

    def delete(self, name: str, host: str | None = None, *, domain: str | None = None,
               path: str | None = None) -> None:
        """Remove every cookie `name` that `host` would be sent (any host if None)."""
        for cookie in [c for c in self if c.name == name and _matches(c, host, domain, path)]:
            self.clear(cookie.domain, cookie.path, cookie.name)

    def get_dict(self, domain: str | None = None, path: str | None = None) -> dict[str, Any]:
        return {c.name: c.value for c in self if _matches(c, None, domain, path)}

    def update(self, other: Mapping[str, Any] | http.cookiejar.CookieJar) -> None:
        """Add the cookies of a mapping (for every host) or of another jar."""
        if isinstance(other, http.cookiejar.CookieJar):
            for cookie in other:
                self.set_cookie(copy.copy(cookie))
        else:
            for name, value in other.items():
                self.set(name, value)

    def keys(self) -> list[str]:
        return [c.name for c in self]

    def values(self) -> list[Any]:
        return [c.value for c in self]

    def items(self) -> list[tuple[str, Any]]:
        return [(c.name, c.value) for c in self]

    def __getitem__(self, name: str) -> Any:
        for cookie in self:
            if cookie.name == name:
                return cookie.value
        raise KeyError(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.delete(name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self)


def jar_of(cookies: Mapping[str, Any] | http.cookiejar.CookieJar, base: CookieJar | None = None) -> CookieJar:
    """A new jar with `base`'s cookies, then `cookies` (a dict, for every host, or a jar): how requests
    merges a request's ``cookies=`` with the session's for that request only."""
    jar = CookieJar()
    if base is not None:
        jar.update(base)
    jar.update(cookies)
    return jar


class ExpiringHeads(dict[Any, bytes]):
    """A session's cache of encoded heads while its jar holds a cookie that expires: emptied (and the
    jar purged) once the first one expires, so no cached head sends a cookie past its time."""

    __slots__ = ("jar",)

    def __init__(self, jar: CookieJar) -> None:
        super().__init__()
        self.jar = jar

    def get(self, key: Any, default: Any = None) -> Any:
        if time() < self.jar.expires_at:
            return dict.get(self, key, default)
        self.jar.expire()  # its on_change gives the session a new cache
        return default
