"""TLS: one gevent SSLContext per process per configuration, and a client-side session cache.

The context is a `gevent.ssl.SSLContext` (cooperative without monkey-patching); building one
and loading a CA store costs ~0.7 MB and ~25 ms, so every session of a process shares it.
"""

from __future__ import annotations

import dataclasses
import os
from time import monotonic
from typing import Any

import gevent
from gevent import ssl
from gevent.event import Event

from . import native_sessions
from .settings import ClientSettings
from .urls import tls_key

_CONTEXTS: dict[tuple[Any, ...], ssl.SSLContext] = {}
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}  # --tls-max
_OVERRIDES: dict[tuple[Any, ...], tuple[ClientSettings, ClientSettings | None]] = {}  # request_tls(), by id


def get_context(settings: ClientSettings) -> ssl.SSLContext:
    """The process-wide SSLContext for this TLS configuration (built on first use)."""
    key = tls_key(settings)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = _CONTEXTS[key] = build_context(settings)
    return ctx


def build_context(settings: ClientSettings) -> ssl.SSLContext:
    """A new client context: verification on (certifi or system CAs) unless `insecure`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        try:
            import certifi

            ctx.load_verify_locations(cafile=certifi.where())
        except ImportError:  # pragma: no cover - certifi ships with geventhttpclient
            ctx.load_default_certs()
    if settings.ca_bundle:
        if os.path.isdir(settings.ca_bundle):  # a directory of hashed certificates, as requests' verify= takes
            ctx.load_verify_locations(capath=settings.ca_bundle)
        else:
            ctx.load_verify_locations(cafile=settings.ca_bundle)
    if settings.client_cert:
        ctx.load_cert_chain(settings.client_cert, settings.client_key)
    if settings.tls_max is not None:
        ctx.maximum_version = TLS_VERSIONS[settings.tls_max]
    ctx.set_alpn_protocols(["http/1.1"])
    native_sessions.available(ctx)  # tested once per process
    return ctx


def _path(value: Any, what: str) -> str:
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.exists(path):
        raise ValueError(f"{what}: no such file or directory {value!r}")
    return path


def request_tls(settings: ClientSettings, verify: Any = None, cert: Any = None) -> ClientSettings | None:
    """The TLS settings a request's ``verify=`` and ``cert=`` ask for (as requests reads them), or None
    when they are `settings`' own. ``verify``: True (verify, keeping `settings`' CA bundle), False (do not
    verify) or the path of a CA bundle file or directory; ``cert``: a file with certificate and key, or a
    (certificate, key) pair; None leaves either as `settings` have it. Missing files raise `ValueError`."""
    cache_key = (id(settings), verify, tuple(cert) if isinstance(cert, list) else cert)
    try:
        base, cached = _OVERRIDES[cache_key]
        if base is settings:
            return cached
    except KeyError:
        pass
    except TypeError:  # unhashable: not a value requests takes either
        raise TypeError(f"verify= must be True, False or a path and cert= a path or a pair, not {verify!r}, "
                        f"{cert!r}") from None
    changes: dict[str, Any] = {}
    if verify is not None:
        if isinstance(verify, bool):
            changes["insecure"] = not verify
        else:
            changes.update(insecure=False, ca_bundle=_path(verify, "verify="))
    if cert is not None:
        if isinstance(cert, (tuple, list)):
            if len(cert) != 2:
                raise ValueError(f"cert= must be a path or a (certificate, key) pair, not {cert!r}")
            changes.update(client_cert=_path(cert[0], "cert="), client_key=_path(cert[1], "cert= key"))
        else:
            changes.update(client_cert=_path(cert, "cert="), client_key=None)
    found = dataclasses.replace(settings, **changes)
    result = None if tls_key(found) == tls_key(settings) else found
    if len(_OVERRIDES) >= 256:
        _OVERRIDES.clear()
    _OVERRIDES[cache_key] = (settings, result)
    return result


Key = tuple[str, int, "str | None"]
TICKET_POLL_FIRST = 0.001  # seconds: the first look for a TLS 1.3 ticket after the handshake, then doubling
TICKET_POLL_MAX = 0.05


def session_of(sock: Any) -> Any:
    """The socket's TLS session (native when it can be, see `native_sessions`), or None once it is closed."""
    if native_sessions.enabled():
        return native_sessions.take(sock)
    try:
        return sock.session
    except (AttributeError, ValueError, OSError):
        return None


def offer_session(ssl_context: ssl.SSLContext, sock: Any, server_hostname: str, session: Any) -> Any:
    """``ssl_context.wrap_socket`` (handshake not done), offering ``session`` to resume."""
    if session is not None and native_sessions.enabled():
        tsock = ssl_context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
        native_sessions.offer(tsock, session)
        return tsock
    return ssl_context.wrap_socket(sock, server_hostname=server_hostname, session=session,
                                   do_handshake_on_connect=False)


class TLSSessionCache:
    """Last TLS session seen per (host, port, sni), offered on the next connect to resume.

    When many users connect to a new host at once, the first one does the full handshake and the
    others wait (at most `max_wait` s) for its session, so they can resume it instead. The session
    is published as soon as it can be resumed (see `handshake_done`), never after the leader's
    first response, so no user's latency includes another user's server time.
    """

    __slots__ = ("_sessions", "_stamps", "_pending", "enabled", "max_entries", "max_wait", "refresh")

    def __init__(
        self, enabled: bool = True, max_entries: int = 10_000, max_wait: float = 5.0, refresh: float = 60.0
    ) -> None:
        self.enabled = enabled
        self.max_entries = max_entries
        self.max_wait = max_wait
        self.refresh = refresh
        self._sessions: dict[Key, Any] = {}  # an ssl.SSLSession, or a native_sessions.NativeSession
        self._stamps: dict[Key, float] = {}
        self._pending: dict[Key, Event] = {}

    def wants(self, key: Key, resumed: bool) -> bool:
        """Whether a new connection should hand its session back: always after a full handshake;
        after a resumption only when the cached session is older than `refresh` seconds (reading
        a session back out of OpenSSL costs about as much as the handshake itself)."""
        if not self.enabled:
            return False
        if not resumed:
            return True
        return monotonic() - self._stamps.get(key, 0.0) > self.refresh

    def get(self, key: Key) -> ssl.SSLSession | None:
        return self._sessions.get(key) if self.enabled else None

    def checkout(self, key: Key, timeout: float | None) -> ssl.SSLSession | None:
        """A session to offer for `key`; the first caller without one becomes the leader
        (must later call `put` or `abandon`), later callers wait for the leader's session."""
        if not self.enabled:
            return None
        session = self._sessions.get(key)
        if session is not None:
            return session
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = Event()
            return None
        wait = self.max_wait if timeout is None else min(timeout, self.max_wait)
        pending.wait(wait)
        return self._sessions.get(key)

    def handshake_done(self, key: Key, sock: Any) -> None:
        """A full handshake for `key` finished: publish its session as soon as it can be resumed.

        TLS 1.2 sessions can be at once. A TLS 1.3 ticket arrives just after the handshake and is read
        while the connection waits for its first response, so a watcher looks for it (a few reads,
        backing off) and publishes it then: nobody waits for another user's first response."""
        if key not in self._pending:
            return
        session = session_of(sock)
        if session is not None and session.has_ticket:
            self.put(key, session)
        elif session is None:
            self.abandon(key)
        else:
            gevent.spawn(self._watch_for_ticket, key, sock)

    def _watch_for_ticket(self, key: Key, sock: Any) -> None:
        """Publish the leader's session once its ticket is in; let the waiters go if it never comes."""
        delay, waited = TICKET_POLL_FIRST, 0.0
        while key in self._pending and waited < self.max_wait:
            gevent.sleep(delay)
            waited += delay
            session = session_of(sock)
            if session is None:
                break
            if session.has_ticket:
                self.put(key, session)
                return
            delay = min(delay * 2, TICKET_POLL_MAX)  # reading a session costs ~0.25 ms: back off
        self.abandon(key)

    def abandon(self, key: Key) -> None:
        """The leader failed before getting a session: release the waiters."""
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.set()

    def put(self, key: Key, session: ssl.SSLSession | None) -> None:
        if not self.enabled:
            return
        if session is not None:
            sessions = self._sessions
            if key not in sessions and len(sessions) >= self.max_entries:
                sessions.clear()
                self._stamps.clear()
            sessions[key] = session
            self._stamps[key] = monotonic()
        self.abandon(key)

    def clear(self) -> None:
        self._sessions.clear()
        self._stamps.clear()

    def __len__(self) -> int:
        return len(self._sessions)
