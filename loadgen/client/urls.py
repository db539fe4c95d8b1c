"""Origins (scheme, host, port) and how URLs split into an origin and a request target (pure)."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin:
    """scheme://host:port, with the bytes and keys the hot path needs precomputed."""

    __slots__ = ("scheme", "host", "port", "tls", "host_header", "prefix", "key")

    def __init__(self, scheme: str, host: str, port: int | None = None) -> None:
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"unsupported URL scheme {scheme!r} (http or https)")
        if not host:
            raise ValueError("URL has no host")
        self.scheme = scheme
        self.host = host.strip("[]").lower()
        self.port = port or DEFAULT_PORTS[scheme]
        self.tls = scheme == "https"
        h = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = h if self.port == DEFAULT_PORTS[scheme] else f"{h}:{self.port}"
        self.prefix = f"{scheme}://{self.host_header}"
        self.key = (scheme, self.host, self.port)

    def __repr__(self) -> str:
        return f"Origin({self.prefix})"


def base_origin(base_url: str) -> tuple[Origin, str]:
    """(Origin, base path without a lone "/") of a session's base URL ("" = none)."""
    origin, path = origin_of(base_url or "http://base-url.invalid")
    return origin, "" if path == "/" else path


def origin_of(url: str) -> tuple[Origin, str]:
    """Split an absolute URL into its Origin and request target (path?query)."""
    parts = urlsplit(url)
    origin = Origin(parts.scheme, parts.hostname or "", parts.port)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return origin, target
