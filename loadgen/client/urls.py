"""Origins (scheme, host, port) and how URLs split into an origin and a request target (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .proxies import Proxy
    from .settings import ClientSettings

DEFAULT_PORTS = {"http": 80, "https": 443}


def tls_key(settings: ClientSettings) -> tuple[Any, ...]:
    """What makes two TLS configurations different (the fields an SSLContext is built from)."""
    return (settings.insecure, settings.ca_bundle, settings.client_cert, settings.client_key, settings.tls_max)


class Origin:
    """scheme://host:port, with the bytes and keys the hot path needs precomputed.

    An https origin may carry TLS settings of its own (a request's ``verify=``/``cert=``), and any origin
    a `Proxy` it is reached through (``proxies=``); its `key` then names them too, so its pooled
    connections serve no request with another configuration or route."""

    __slots__ = ("scheme", "host", "port", "tls", "host_header", "prefix", "key", "tls_settings", "proxy")

    def __init__(self, scheme: str, host: str, port: int | None = None,
                 tls_settings: ClientSettings | None = None, proxy: Proxy | None = None) -> None:
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
        self.tls_settings = tls_settings if self.tls else None
        self.key: tuple[Any, ...] = (scheme, self.host, self.port)
        if self.tls_settings is not None:
            self.key = (scheme, self.host, self.port, tls_key(self.tls_settings))
        self.proxy = proxy
        if proxy is not None:
            self.key = (*self.key, proxy.key)

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
