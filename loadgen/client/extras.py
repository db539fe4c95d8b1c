"""The requests arguments beyond the hot path: ``auth=``, ``files=``, ``cookies=``, ``verify=``/``cert=``,
the ones refused or ignored, and the session's ``auth``, ``verify`` and ``cert``.

`RequestsSurface` is a mixin of `HttpSession`. A request with any of these arguments, from a session with
``auth`` or credentials in its base URL, or to a URL with credentials, is prepared here (and so are its
redirect hops); no other request comes here, so they cost the hot path nothing.
"""

from __future__ import annotations

import json as _json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from gevent import getcurrent

from .auth import apply_auth, basic_auth, url_credentials
from .codings import ACCEPT_ENCODING
from .cookies import CookieJar, jar_of
from .encoding import BODYLESS_METHODS, encode_data, headers_key, request_target, with_query
from .multipart import encode_multipart
from .prepared import PreparedRequest, RequestHeaders
from .proxies import proxy_for
from .tls import request_tls
from .urls import Origin, tls_key

if TYPE_CHECKING:
    from .headers import SessionHeaders
    from .interfaces import SessionFactory
    from .settings import ClientSettings


class RequestExtras(TypedDict, total=False):
    """The keyword arguments of `HttpSession.request` and the verbs beyond the hot path's."""

    auth: Any  # (user, password), or a callable(request) -> request
    files: Any  # {field: content | (filename, content[, content_type[, headers]])} or pairs
    cookies: Any  # {name: value} or a http.cookiejar.CookieJar, for this request only
    verify: Any  # True, False, or a CA bundle path
    cert: Any  # a path, or (certificate, key)
    stream: bool | None  # True: return at the response head, read the body as it is iterated
    proxies: Mapping[str, str] | None  # {"http": url, "https": url, "all": url, "no_proxy": hosts}
    hooks: Mapping[str, Any] | None  # empty only
    context: Any  # Locust's: extra keys for this request's event listeners


KNOWN = frozenset(RequestExtras.__annotations__)
REQUEST_CONTEXT = "loadgen_request_context"  # on the requesting greenlet, until its request is recorded
_TLS_ORIGINS: dict[tuple[Any, ...], Origin] = {}  # (origin key, TLS key) -> the origin with those settings
_PROXIED: dict[tuple[Any, ...], Origin] = {}  # (origin key, proxy key) -> the origin through that proxy


def check_extras(extras: Mapping[str, Any]) -> None:
    """Refuse what is not supported, with what to do instead."""
    if not KNOWN.issuperset(extras):
        unknown = extras.keys() - KNOWN
        raise TypeError(f"request() got an unexpected keyword argument {min(unknown)!r}")
    if extras.get("hooks"):
        raise NotImplementedError("hooks= is not supported: use the response the call returns "
                                  "(catch_response=True to decide success or failure)")


def _with_tls(origin: Origin, tls: ClientSettings | None) -> Origin:
    """`origin` with TLS settings `tls` (None: the factory's); http origins have none."""
    if not origin.tls or origin.tls_settings is tls:
        return origin
    key = (origin.scheme, origin.host, origin.port, None if tls is None else tls_key(tls))
    found = _TLS_ORIGINS.get(key)
    if found is None:
        if len(_TLS_ORIGINS) >= 1024:
            _TLS_ORIGINS.clear()
        found = _TLS_ORIGINS[key] = Origin(origin.scheme, origin.host, origin.port, tls)
    return found


def with_proxy(origin: Origin, proxies: Mapping[str, Any] | None) -> Origin:
    """`origin` reached through the proxy `proxies` choose for it (itself if none)."""
    proxy = proxy_for(origin.scheme, origin.host, origin.port, proxies)
    if proxy is None:
        return origin
    key = (origin.key, proxy.key)
    found = _PROXIED.get(key)
    if found is None:
        if len(_PROXIED) >= 1024:
            _PROXIED.clear()
        found = _PROXIED[key] = Origin(origin.scheme, origin.host, origin.port, origin.tls_settings, proxy)
    return found


class Prepared:
    """A request prepared here: what it sends first, and how its redirect hops are encoded and resolved."""

    __slots__ = ("session", "origin", "target", "wire", "body", "ctype", "headers", "cookies", "tls", "stream",
                 "proxies")

    def __init__(self, session: RequestsSurface, origin: Origin, target: str, wire: bytes, body: bytes | None,
                 ctype: str | None, headers: Mapping[str, Any] | None, cookies: Any,
                 tls: ClientSettings | None, stream: bool = False, proxies: Mapping[str, Any] | None = None) -> None:
        self.session = session
        self.origin = origin
        self.target = target
        self.wire = wire
        self.body = body
        self.ctype = ctype
        self.headers = headers
        self.cookies = cookies
        self.tls = tls
        self.stream = stream
        self.proxies = proxies

    def encode_head(self, method: str, target: str, origin: Origin, headers: Mapping[str, Any] | None,
                    ctype: str | None, *, drop: frozenset[str] = frozenset()) -> bytes:
        """A redirect hop's head: the request's ``cookies=`` go on with the session's, as in requests."""
        s = self.session
        jar = jar_of(self.cookies, s._cookies) if self.cookies else None
        return s._encode_head(method, target, origin, headers, ctype, drop=drop, jar=jar)

    def resolve(self, url: str) -> tuple[Origin, str]:
        origin, target = self.session._resolve(url)
        return with_proxy(_with_tls(origin, self.tls), self.proxies), target


class RequestsSurface:
    """Mixin of `HttpSession`: requests' arguments beyond the hot path, and the session's auth and TLS."""

    __slots__ = ("_fast", "_auth", "_base_auth", "_tls", "_tls_args", "_proxies")
    _fast: bool  # a base URL, no auth, URL credentials or proxies of the session: relative paths take the hot path
    _proxies: dict[str, str] | None  # the session's (None: none)
    _auth: Any
    _base_auth: tuple[str, str] | None
    _tls: ClientSettings | None  # the session's own TLS settings (verify, cert), None: the factory's
    _tls_args: tuple[Any, Any]
    # what this uses of HttpSession
    factory: SessionFactory
    _origin: Origin
    _base_path: str
    _has_base: bool
    _cookies: CookieJar | None
    _headers: SessionHeaders | None
    _user_agent: str
    _heads: dict[Any, bytes]

    def _resolve(self, path: str) -> tuple[Origin, str]:
        raise NotImplementedError

    def _encode_head(self, method: str, target: str, origin: Origin, headers: Mapping[str, Any] | None,
                     ctype: str | None, key: Any = None, final: bool = False, drop: frozenset[str] = frozenset(),
                     jar: CookieJar | None = None) -> bytes:
        raise NotImplementedError

    # -- the session's auth, verify and cert (as requests.Session's) ---------------------------
    @property
    def auth(self) -> Any:
        """Default ``auth=`` of every request: (user, password) or a callable; None: none."""
        return self._auth

    @auth.setter
    def auth(self, value: Any) -> None:
        self._auth = value
        self._set_fast()

    @property
    def proxies(self) -> dict[str, str]:
        """Default ``proxies=`` of every request, as requests.Session's: ``{"http": url, "https": url}``
        (also ``"all"``, ``"scheme://host"`` and ``"no_proxy"``); changes to the dict count."""
        if self._proxies is None:
            self._proxies = _Proxies(self)
        return self._proxies

    @proxies.setter
    def proxies(self, value: Mapping[str, str] | None) -> None:
        self._proxies = _Proxies(self, value or {})
        self._set_fast()

    def _set_fast(self) -> None:
        self._fast = self._has_base and self._auth is None and self._base_auth is None and not self._proxies

    @property
    def verify(self) -> Any:
        """Default ``verify=``: True, False or a CA bundle path (None: ``--insecure``/``--ca-bundle``)."""
        return self._tls_args[0]

    @verify.setter
    def verify(self, value: Any) -> None:
        self._set_tls(value, self._tls_args[1])

    @property
    def cert(self) -> Any:
        """Default ``cert=``: a path or (certificate, key) (None: ``--client-cert``/``--client-key``)."""
        return self._tls_args[1]

    @cert.setter
    def cert(self, value: Any) -> None:
        self._set_tls(self._tls_args[0], value)

    def _set_tls(self, verify: Any, cert: Any) -> None:
        """The session's ``verify``/``cert`` (HttpSession moves its origins onto them)."""
        self._tls = request_tls(self.factory.settings, verify, cert)
        self._tls_args = (verify, cert)

    # -- a request prepared here ------------------------------------------------------------------
    def _prepare(self, method: str, path: str, headers: Mapping[str, Any] | None, params: Any, json: Any,
                 data: Any, extras: Mapping[str, Any]) -> Prepared:
        """What `request` sends for a request with any of requests' further arguments (`RequestExtras`)."""
        if extras:
            check_extras(extras)
        get = extras.get
        context = get("context")
        if context:  # Locust's: for this request's event listeners (read once, by the recording side)
            setattr(getcurrent(), REQUEST_CONTEXT, context)
        if path[:1] == "/" and self._has_base:
            origin, target = self._origin, self._base_path + path
        else:
            origin, target = self._resolve(path)
        low = path[:8].lower()
        absolute = low.startswith("http://") or low.startswith("https://")
        if params:
            target = with_query(target, params)
        tls = self._tls
        if get("verify") is not None or get("cert") is not None:
            found = request_tls(tls or self.factory.settings, get("verify"), get("cert"))
            if found is not None:
                tls = None if tls_key(found) == tls_key(self.factory.settings) else found
            origin = _with_tls(origin, tls)
        files = get("files")
        body: bytes | None = None
        ctype: str | None = None
        if files:  # json= is left out, as in requests
            body, ctype = encode_multipart(data, files)
        elif data is not None and (data or json is None):
            body, ctype = encode_data(data)
        elif json is not None:
            body, ctype = _json.dumps(json).encode(), "application/json"
        auth = get("auth")  # the request's, else the session's, else the URL's (as requests)
        if auth is None:
            auth = self._auth
        if auth is None:
            auth = url_credentials(path) if absolute else self._base_auth
        if auth and isinstance(auth, tuple) and len(auth) == 2:
            headers = {**(headers or {}), "Authorization": basic_auth(*auth)}
        elif auth:
            view = self._view(method, origin, target, headers, ctype, body)
            given = {name.lower() for name in view.headers}
            request = apply_auth(auth, view)
            headers, ctype = _after_auth(request, given, ctype)
            body = request.body.encode() if isinstance(request.body, str) else request.body
            if request.url != origin.prefix + request_target(target):
                origin, target = self._resolve(request.url)
                origin = _with_tls(origin, tls)
        proxies: Mapping[str, Any] | None = self._proxies or None  # the request's over the session's
        if get("proxies"):
            proxies = {**(proxies or {}), **get("proxies")}  # type: ignore[dict-item]
        if proxies:
            origin = with_proxy(origin, proxies)
        cookies = get("cookies") or None
        jar = jar_of(cookies, self._cookies) if cookies else None
        final = body is None and method in BODYLESS_METHODS
        key = pre = None
        if jar is None and not files:  # cached as the hot path caches (a boundary or cookies= never repeat)
            hk = headers_key(headers)
            key = (method, target, origin.key, hk) if final else (method, target, origin.key, hk, ctype, 1)
            pre = self._heads.get(key)
        if pre is None:
            pre = self._encode_head(method, target, origin, headers, None if final else ctype, key, final, jar=jar)
        if final:
            wire = pre
        elif body is None:
            wire = pre + b"Content-Length: 0\r\n\r\n"
        else:
            wire = b"%sContent-Length: %d\r\n\r\n%s" % (pre, len(body), body)
        return Prepared(self, origin, target, wire, body, ctype, headers, cookies, tls, bool(get("stream")), proxies)

    def _view(self, method: str, origin: Origin, target: str, headers: Mapping[str, Any] | None,
              ctype: str | None, body: bytes | None) -> PreparedRequest:
        """The request as an auth callable sees it: headers as sent (but Host, Cookie, Content-Length)."""
        view = RequestHeaders({"User-Agent": self._user_agent, "Accept-Encoding": ACCEPT_ENCODING, "Accept": "*/*"})
        for fields in (self._headers, headers):
            for name, value in (fields or {}).items():
                if value is None:
                    view.pop(name, None)
                else:
                    view[name] = str(value)
        if ctype is not None and "content-type" not in view:
            view["Content-Type"] = ctype
        return PreparedRequest(method, origin.prefix + request_target(target), view, body)


class _Proxies(dict[str, str]):
    """The session's proxies: a dict that tells the session when it changes (hot path or not)."""

    def __init__(self, session: RequestsSurface, value: Mapping[str, str] | None = None) -> None:
        super().__init__(value or {})
        self._session = session

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self._session._set_fast()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._session._set_fast()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._session._set_fast()

    def clear(self) -> None:
        super().clear()
        self._session._set_fast()

    def pop(self, key: str, *default: Any) -> Any:
        try:
            return super().pop(key, *default)
        finally:
            self._session._set_fast()

    def setdefault(self, key: str, default: Any = None) -> Any:
        try:
            return super().setdefault(key, default)
        finally:
            self._session._set_fast()


def _after_auth(request: Any, given: set[str], ctype: str | None) -> tuple[dict[str, Any], str | None]:
    """The request's headers after an auth callable ran (None for each of `given` it removed), and its
    content type (None if it removed that)."""
    headers: dict[str, Any] = dict(request.headers.items())
    kept = {name.lower() for name in headers}
    for name in given:
        if name not in kept:
            headers[name] = None
            if name == "content-type":
                ctype = None
    return headers, ctype
