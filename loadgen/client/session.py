"""`HttpSession` (`self.client`). Hot path: a cached pre-encoded head, one pooled keep-alive connection,
framing in `Connection.roundtrip`, one `Response` and one `recorder.record(...)` per request."""

from __future__ import annotations

import http.cookiejar
import json as _json
from collections.abc import Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gevent import GreenletExit, Timeout
from geventhttpclient._parser import HTTPParseError

from .auth import url_credentials
from .cookies import INF, CookieJar, ExpiringHeads, jar_of
from .counters import COUNTERS
from .encoding import BODYLESS_METHODS, IDEMPOTENT, encode_data, encode_head, headers_key, with_query
from .errors import ConnectionClosed, ProtocolError, StaleConnection, describe_failure, not_resent
from .extras import Prepared, RequestsSurface
from .headers import SessionHeaders
from .http11 import ENCODED, SETS_COOKIES, TRUNCATED, status_error
from .pool import acquire_live
from .prepared import sent_target
from .redirects import REDIRECTS, follow
from .response import Response
from .settings import timeouts
from .streaming import stream_request
from .urls import Origin, base_origin
from .verbs import USE_SETTINGS, Verbs

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .extras import RequestExtras
    from .interfaces import QueueDelay, SessionFactory
    from .pool import ConnectionPool
    from .settings import ClientSettings

_DEFAULT: Any = USE_SETTINGS  # "use the settings' timeouts"
_UPPER = {m: m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}  # upper() costs a new str
_UPPER.update((m.lower(), m) for m in list(_UPPER))
_TRANSPORT_ERRORS = (OSError, ProtocolError, HTTPParseError)
_CUT_OFF = (GreenletExit, Timeout)  # a request ended from outside: interrupted, no verdict
_HEAD_CACHE_MAX = 512  # encoded heads cached per session with headers or cookies of its own
_SHARED_HEAD_CACHE_MAX = 4096  # per (base origin, keep-alive) for all other sessions of a factory


class HttpSession(Verbs, RequestsSurface):
    """An HTTP client bound to a base URL and a connection pool; one per user.

    Memory per session is kept small (thousands per process): slots, the base `Origin` and the
    cache of encoded request heads are shared through the factory until the session gets headers
    or cookies of its own, and `headers`/`cookies` exist only once used.
    """

    __slots__ = (
        "factory", "recorder", "base_url", "_has_base", "_origin", "_base_path", "_keep_alive", "_pool",
        "_owns_pool", "_heads", "_private", "_headers", "_cookies", "_timing", "_ct", "_rt", "_max_body",
        "_max_redirects", "_user_agent", "_origins", "closed", "_ttfb", "_first_byte", "_setup", "__weakref__",
    )

    def __init__(self, factory: SessionFactory, base_url: str, keep_alive: bool, pool: ConnectionPool, owns_pool: bool,
                 timing: QueueDelay | None = None) -> None:
        settings = factory.settings
        self.factory = factory
        self.recorder = factory.recorder
        self.base_url = base_url.rstrip("/")
        # without a base URL every path must be absolute; the placeholder origin is never used
        self._has_base = bool(self.base_url)
        base = getattr(factory, "base_origin", None)
        self._origin: Origin
        self._base_path: str
        self._origin, self._base_path = base(self.base_url) if base else base_origin(self.base_url)
        self._auth: Any = None
        self._base_auth = url_credentials(self.base_url)  # http://user:pass@host: Basic for relative paths
        self._fast = self._has_base and self._base_auth is None
        self._proxies: dict[str, str] | None = None
        self._tls: ClientSettings | None = None
        self._tls_args: tuple[Any, Any] = (None, None)
        self._keep_alive = keep_alive
        self._pool = pool
        self._owns_pool = owns_pool
        self._private = False
        self._heads: dict[Any, bytes] = self._shared_heads()
        self._headers: SessionHeaders | None = None
        self._cookies: CookieJar | None = None
        self._timing: QueueDelay | None = timing
        self._ct = settings.connect_timeout
        self._rt = settings.read_timeout
        self._max_body = settings.max_body
        self._max_redirects = settings.max_redirects
        self._user_agent = settings.user_agent
        self._origins: dict[str, Origin] | None = None
        self._ttfb = 0.0  # the last exchange: seconds from sending to the first response byte,
        self._first_byte = 0.0  # when that byte arrived (perf_counter),
        self._setup: tuple[int, int, int] | None = None  # and (DNS, connect, TLS) µs if it opened its connection
        self.closed = False

    def configure(self, connect_timeout: float | None = None, read_timeout: float | None = None,
                  max_redirects: int | None = None) -> None:
        """This session's own timeouts (s) and redirect limit (FastHttpUser's attributes)."""
        self._ct = self._ct if connect_timeout is None else float(connect_timeout)
        self._rt = self._rt if read_timeout is None else float(read_timeout)
        self._max_redirects = self._max_redirects if max_redirects is None else int(max_redirects)

    def _shared_heads(self) -> dict[Any, bytes]:
        """The factory's cache of heads for sessions without headers or cookies of their own."""
        shared = getattr(self.factory, "shared_heads", None)
        return shared(self._origin.key, self._keep_alive) if shared else {}

    def _heads_changed(self) -> None:
        """Headers or cookies changed: from now on this session encodes its own heads (in a cache that
        empties itself when a cookie expires, if one will)."""
        jar = self._cookies
        if jar is not None and jar.expires_at < INF:
            self._heads = ExpiringHeads(jar)
        elif self._private and type(self._heads) is dict:
            self._heads.clear()
        else:
            self._heads = {}
        self._private = True

    @property
    def headers(self) -> dict[str, str]:
        """Default headers sent with every request of this session."""
        h = self._headers
        if h is None:
            h = self._headers = SessionHeaders(self._heads_changed)
        return h

    @headers.setter
    def headers(self, value: Mapping[str, str]) -> None:
        h = SessionHeaders(self._heads_changed)
        dict.update(h, value)
        self._headers = h
        self._heads_changed()

    @property
    def cookies(self) -> CookieJar:
        """Cookies received and sent back (Domain, Path, Secure, expiry), or set by the script."""
        c = self._cookies
        if c is None:
            c = self._cookies = CookieJar(self._heads_changed)
        return c

    @cookies.setter
    def cookies(self, jar: CookieJar | Mapping[str, Any] | http.cookiejar.CookieJar) -> None:
        if not isinstance(jar, CookieJar):
            jar = jar_of(jar)
        jar.on_change = self._heads_changed
        self._cookies = jar
        self._heads_changed()

    def _set_tls(self, verify: Any, cert: Any) -> None:
        """The session's own ``verify``/``cert``: its origins carry them (their connections are their own)."""
        super()._set_tls(verify, cert)
        self._origin = self._origin if self._tls is self._origin.tls_settings else Origin(
            self._origin.scheme, self._origin.host, self._origin.port, self._tls)
        self._origins = None
        if self._private:
            self._heads.clear()
        else:
            self._heads = self._shared_heads()

    @property
    def keep_alive(self) -> bool:
        """False closes the connection after every request (and sends ``Connection: close``)."""
        return self._keep_alive

    @keep_alive.setter
    def keep_alive(self, value: bool) -> None:
        self._keep_alive = bool(value)
        if self._private:
            self._heads.clear()
        else:
            self._heads = self._shared_heads()

    # -- the request (the verbs are in `Verbs`) -------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        name: str | None = None,
        headers: Mapping[str, Any] | None = None,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        timeout: Any = _DEFAULT,
        catch_response: bool = False,
        allow_redirects: bool = True,
        **extras: Unpack[RequestExtras],
    ) -> Response:
        """Send one request (following redirects) and record it; never raises transport errors.
        requests' further arguments (`RequestExtras`: auth, files, cookies, verify, cert...) go through
        `_prepare`."""
        if timeout is _DEFAULT:
            ct = self._ct
            rt = self._rt
        else:
            ct, rt = timeouts(timeout)
        upper = _UPPER.get(method)
        method = upper if upper is not None else method.upper()
        body: bytes | None
        ctype: str | None
        prep: Prepared | None = None
        if path[:1] == "/" and self._fast and not extras:
            origin = self._origin
            target = self._base_path + path
        elif extras or not self._fast and (self._auth is not None or self._base_auth is not None or self._proxies
                                            or "@" in path):
            prep = self._prepare(method, path, headers, params, json, data, extras)
            if prep.stream:
                return stream_request(self, method, path, name, prep, ct, rt, catch_response, allow_redirects)
            origin, target, body, ctype, headers = prep.origin, prep.target, prep.body, prep.ctype, prep.headers
        else:
            origin, target = self._resolve(path)
        if prep is None:
            body = ctype = None
            if data is not None and (data or json is None):  # data wins over json=, as in requests
                body, ctype = encode_data(data)
            elif json is not None:
                body = _json.dumps(json).encode()
                ctype = "application/json"
            if params:
                target = with_query(target, params)
            if body is None and method in BODYLESS_METHODS:  # cached value is the whole request
                if headers is None and origin is self._origin:
                    key: Any = (method, target)
                else:
                    key = (method, target, origin.key, headers_key(headers))
                wire = self._heads.get(key)
                if wire is None:
                    wire = self._encode_head(method, target, origin, headers, None, key, True)
            else:  # cached value is the head without Content-Length and blank line
                key = (method, target, origin.key, headers_key(headers), ctype, 1)
                pre = self._heads.get(key)
                if pre is None:
                    pre = self._encode_head(method, target, origin, headers, ctype, key, False)
                if body is None:
                    wire = pre + b"Content-Length: 0\r\n\r\n"
                else:
                    wire = b"%sContent-Length: %d\r\n\r\n%s" % (pre, len(body), body)
        else:
            wire = prep.wire

        t0 = perf_counter()
        history: list[Response] | None = None
        try:
            status, head, rbody, nbytes, flags = self._exchange(origin, wire, method, ct, rt, t0)
            error = None if status < 400 else status_error(status, head)
            if allow_redirects and status in REDIRECTS:
                status, head, rbody, nbytes, flags, origin, target, error, wire, history = follow(
                    self._exchange, self._encode_head if prep is None else prep.encode_head,
                    self._resolve if prep is None else prep.resolve, self._max_redirects,
                    method, origin, target, headers, body, ctype, status, head, rbody, nbytes, flags, ct, rt, wire,
                )
        except _TRANSPORT_ERRORS as exc:
            status, head, rbody, nbytes, flags = 0, b"", b"", 0, 0
            error = describe_failure(exc, origin, self.factory.settings)
        except _CUT_OFF:  # GreenletExit (a forced stop, a fence) or an outer gevent.Timeout: cut off
            self.recorder.record_interrupted(method, path if name is None else name)
            raise
        end = perf_counter()
        latency_us = int((end - t0) * 1_000_000)
        if name is None:
            name = path
        resp = Response(status, head, rbody, latency_us, nbytes, error, origin.prefix, target, method, name, wire)
        if history is not None:
            resp._history = history
        if flags:
            if flags & TRUNCATED:
                resp.truncated = True
            elif flags & ENCODED and rbody:  # decoded now, as requests does: a corrupt body is a failure
                failed = resp.decode_content()
                if failed is not None and error is None:
                    resp.error = error = failed
        timing = self._timing
        queued = timing.take_queued_us() if timing is not None and timing.queued_us else 0
        if catch_response:
            resp.record_on_exit(self.recorder, queued, self._phases(status, end))
            return resp
        if status:
            self.recorder.record(method, name, latency_us, nbytes, error, queued, int(self._ttfb * 1_000_000),
                                 int((end - self._first_byte) * 1_000_000), self._setup)
        else:  # no response: no phases
            self.recorder.record(method, name, latency_us, nbytes, error, queued)
        return resp

    def _exchange(
        self, origin: Origin, wire: bytes, method: str, ct: float | None, rt: float | None, t0: float
    ) -> tuple[int, bytes, bytes, int, int]:
        """One request/response on a pooled connection; retries once on a stale keep-alive."""
        pool = self._pool
        head_only = method == "HEAD"
        for attempt in (0, 1):
            if method in IDEMPOTENT:
                conn = pool.acquire(origin, t0, ct, rt)
            else:  # checked even if used a moment ago: a server may close right after its response
                conn = acquire_live(pool, origin, t0, ct, rt)
            try:
                if conn.read_timeout != rt:
                    conn.set_read_timeout(rt)
                status, head, body, nbytes, keep, flags = conn.roundtrip(wire, head_only, self._max_body)
            except StaleConnection as exc:
                pool.discard(conn)
                if attempt or not (exc.unsent or method in IDEMPOTENT):
                    raise ConnectionClosed(not_resent(exc, method, bool(attempt))) from None
                COUNTERS.retries += 1
                continue
            except BaseException:
                pool.discard(conn)
                raise
            COUNTERS.requests += 1
            COUNTERS.bytes_sent += len(wire)
            COUNTERS.bytes_received += nbytes
            pool.release(conn, keep and self._keep_alive, t0)
            if flags & SETS_COOKIES:
                self.cookies.extract(origin.prefix + sent_target(wire), head)  # creates the jar on first Set-Cookie
            first = conn.first_byte
            self._ttfb = first - conn.sent_at
            self._first_byte = first
            self._setup = conn.setup if conn.requests == 1 else None
            return status, head, body, nbytes, flags
        raise AssertionError("unreachable")  # pragma: no cover

    # -- helpers --------------------------------------------------------------------------
    def _phases(self, status: int, end: float) -> tuple[int, int, tuple[int, int, int] | None] | None:
        """(ttfb µs, body µs, setup) of the last exchange, for a catch_response block to record."""
        if not status:
            return None
        return int(self._ttfb * 1_000_000), int((end - self._first_byte) * 1_000_000), self._setup

    def _resolve(self, path: str) -> tuple[Origin, str]:
        """(Origin, target) for an absolute URL or a path relative to the base URL."""
        low = path[:8].lower()
        if not (low.startswith("http://") or low.startswith("https://")):
            if not self._has_base:
                raise ValueError(f"{path!r} is not an absolute URL and the session has no base URL")
            return self._origin, path if path[:1] == "/" else f"{self._base_path}/{path}"
        parts = urlsplit(path)
        netloc = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        origins = self._origins
        if origins is None:
            origins = self._origins = {}
        origin = origins.get(netloc)
        if origin is None:
            o = Origin(parts.scheme, parts.hostname or "", parts.port, self._tls)
            origin = self._origin if o.key == self._origin.key else o
            if len(origins) < 64:
                origins[netloc] = origin
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        return origin, target

    def _encode_head(
        self,
        method: str,
        target: str,
        origin: Origin,
        headers: Mapping[str, Any] | None,
        ctype: str | None,
        key: Any = None,
        final: bool = False,
        drop: frozenset[str] = frozenset(),
        jar: CookieJar | None = None,
    ) -> bytes:
        """`encode_head` with this session's headers, cookies (or `jar`'s) and keep-alive, cached under
        `key` (unless None); `final` adds the blank line that ends a request without body; `drop` names
        fields left out (credentials on a redirect to another host)."""
        if jar is None:
            jar = self._cookies
        pre = encode_head(method, target, origin, self._user_agent, self._headers, headers,
                          jar.header(origin.prefix + target) if jar is not None else None, ctype, self._keep_alive,
                          final, drop)
        if key is not None:
            heads = self._heads
            if len(heads) >= (_HEAD_CACHE_MAX if self._private else _SHARED_HEAD_CACHE_MAX):
                heads.clear()
            heads[key] = pre
        return pre

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Close this user's pooled connections (shared pools stay open)."""
        self.closed = True
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HttpSession {self.base_url}>"
