"""Authentication as requests applies it: a ``(user, password)`` pair and credentials in the URL as HTTP
Basic, or a callable that edits the request (requests' `AuthBase` subclasses, plain functions) (pure)."""

from __future__ import annotations

from base64 import b64encode
from typing import Any
from urllib.parse import unquote, urlsplit

from .prepared import PreparedRequest

_BASIC: dict[tuple[Any, Any], str] = {}  # (user, password) -> basic_auth(): a session's auth is the same each time


def basic_auth(user: Any, password: Any) -> str:
    """The ``Authorization`` value for HTTP Basic, as requests builds it: str as latin-1, bytes as they are
    (pass UTF-8 bytes for characters outside latin-1), anything else through str()."""
    try:
        return _BASIC[(user, password)]
    except (KeyError, TypeError):
        pass
    parts = []
    for value in (user, password):
        if not isinstance(value, (str, bytes)):
            value = str(value)
        parts.append(value.encode("latin-1") if isinstance(value, str) else value)
    value = "Basic " + b64encode(b":".join(parts)).decode("ascii")
    if isinstance(user, (str, bytes)) and isinstance(password, (str, bytes)):
        if len(_BASIC) >= 256:
            _BASIC.clear()
        _BASIC[(user, password)] = value
    return value


def url_credentials(url: str) -> tuple[str, str] | None:
    """(user, password) given in an absolute URL (``http://user:pass@host/``), percent-decoded; None
    unless both are there (as requests)."""
    if "@" not in url:
        return None
    parts = urlsplit(url)
    if parts.username is None or parts.password is None:
        return None
    return unquote(parts.username), unquote(parts.password)


def apply_auth(auth: Any, request: PreparedRequest) -> PreparedRequest:
    """`request` with `auth` applied: a pair sets Basic ``Authorization``; a callable is called with the
    request and must return it (or another with ``headers``, ``url`` and ``body``)."""
    if isinstance(auth, tuple) and len(auth) == 2:
        request.headers["Authorization"] = basic_auth(*auth)
        return request
    if not callable(auth):
        raise TypeError(f"auth= must be a (user, password) tuple or a callable, not {auth!r}")
    result = auth(request)
    if not all(hasattr(result, a) for a in ("headers", "url", "body")):
        raise TypeError(f"auth callable {auth!r} must return the request it was given, not {result!r}")
    return result
