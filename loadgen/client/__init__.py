"""loadgen's HTTP client: lean keep-alive HTTP/1.1 over gevent, recorded per request."""

from .cookies import CookieJar
from .counters import COUNTERS, ConnectionCounters
from .dns import DnsCache
from .errors import ConnectionClosed, ConnectTimeout, ProtocolError, ReadTimeout
from .factory import ClientFactory
from .pool import PoolTimeout
from .response import Headers, HTTPError, Response
from .session import HttpSession
from .settings import ClientSettings
from .tls import TLSSessionCache, get_context
from .urls import Origin

__all__ = [
    "COUNTERS",
    "ClientFactory",
    "ClientSettings",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionCounters",
    "CookieJar",
    "DnsCache",
    "HTTPError",
    "Headers",
    "HttpSession",
    "Origin",
    "PoolTimeout",
    "ProtocolError",
    "ReadTimeout",
    "Response",
    "TLSSessionCache",
    "get_context",
]
