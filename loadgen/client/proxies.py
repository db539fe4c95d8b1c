"""``proxies=``: which proxy a request goes through, and what is said to it (pure, no I/O).

As in requests: a plain http request goes to the proxy with its absolute URL as the target; an https one
goes through a ``CONNECT host:port`` tunnel, and TLS runs end to end with the target inside it. The proxy
is chosen by the keys ``scheme://host``, ``scheme``, ``all://host``, then ``all``; ``no_proxy`` (a comma
list of hosts, domain suffixes, IP networks or ``*``) bypasses it. Credentials in the proxy URL become a
``Proxy-Authorization: Basic`` field. Proxies reached over TLS (``https://`` proxy URLs) and SOCKS are not
supported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from .auth import basic_auth


class Proxy:
    """An http:// proxy: where to connect, and the ``Proxy-Authorization`` value (None: none)."""

    __slots__ = ("host", "port", "authorization", "key", "url")

    def __init__(self, url: str) -> None:
        if "://" not in url:
            url = "http://" + url  # requests' reading of a bare host:port
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "http":
            raise ValueError(f"proxy {url!r}: only http:// proxies are supported (an https target still gets "
                             f"TLS end to end, through CONNECT); not {scheme}://")
        if not parts.hostname:
            raise ValueError(f"proxy {url!r} has no host")
        self.host = parts.hostname.lower()
        self.port = parts.port or 80
        self.authorization = (basic_auth(unquote(parts.username), unquote(parts.password or ""))
                              if parts.username is not None else None)
        self.key = (self.host, self.port, self.authorization)
        self.url = f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"Proxy({self.url})"


_PROXIES: dict[str, Proxy] = {}


def proxy_for(scheme: str, host: str, port: int, proxies: Mapping[str, Any] | None) -> Proxy | None:
    """The proxy for a request to scheme://host:port, as requests chooses it; None: go direct."""
    if not proxies:
        return None
    url = None
    for key in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
        url = proxies.get(key)
        if url:
            break
    if not url or bypassed(host, port, proxies.get("no_proxy")):
        return None
    found = _PROXIES.get(url)
    if found is None:
        if len(_PROXIES) >= 256:
            _PROXIES.clear()
        found = _PROXIES[url] = Proxy(url)
    return found


def bypassed(host: str, port: int, no_proxy: str | None) -> bool:
    """Whether `no_proxy` names this host: ``*``, the host (optionally ``:port``), a parent domain
    (``example.com`` or ``.example.com``), or an IP network (``10.0.0.0/8``)."""
    if not no_proxy:
        return False
    try:
        address: Any = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.replace(" ", ",").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, want = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if want and want != str(port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def connect_request(host: str, port: int, proxy: Proxy) -> bytes:
    """The ``CONNECT`` request that opens a tunnel to host:port through `proxy`."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    auth = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode("latin-1")


def tunnel_refusal(head: bytes) -> str | None:
    """None if the proxy's answer to CONNECT opened the tunnel (2xx), else why not."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1][:1] == b"2" and len(parts[1]) == 3:
        return None
    return f"the proxy refused the tunnel: {line.decode('latin-1')[:120]!r}"
