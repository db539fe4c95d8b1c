"""``HOST:PORT`` text, parsed once for every option that takes an address (pure)."""

from __future__ import annotations

from dataclasses import dataclass

_BAD_HOST_CHARS = frozenset(" /?#@")


@dataclass(frozen=True)
class HostPort:
    """A host (name, IPv4 or bare IPv6) and a port."""

    host: str
    port: int

    @property
    def bracketed(self) -> str:
        """The host as it stands in a URL: IPv6 inside brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def zmq_bind(self) -> str:
        """A ZeroMQ endpoint to bind: a wildcard host becomes ``*``."""
        host = "*" if self.host in ("0.0.0.0", "*", "::") else self.bracketed
        return f"tcp://{host}:{self.port}"

    def zmq_connect(self) -> str:
        return f"tcp://{self.bracketed}:{self.port}"


def parse_host_port(text: str, *, default_port: int | None = None, default_host: str | None = None,
                    schemes: tuple[str, ...] = (), allow_port_zero: bool = False) -> HostPort:
    """Parse ``HOST:PORT``, ``[V6]:PORT``, a bare IPv6 address, ``HOST`` (with ``default_port``) or
    ``PORT`` (with ``default_host``); ``schemes`` are prefixes such as ``tcp://`` to accept and drop.

    Raises ``ValueError`` naming what is wrong; callers add the option's name and an example.
    """
    value = (text or "").strip()
    for scheme in schemes:
        if value.startswith(scheme):
            value = value[len(scheme):].rstrip("/")
            break
    host: str
    port_text: str | None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError("an IPv6 address opened with [ is not closed with ]")
        host, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected text after the address: {rest!r}")
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:
        host, port_text = value, None  # a bare IPv6 address
    elif ":" in value:
        host, _, port_text = value.partition(":")
    elif value.isdigit() and default_host is not None:
        host, port_text = default_host, value
    else:
        host, port_text = value, None
    host = host.strip()
    if not host:
        raise ValueError("no host")
    if any(ch in _BAD_HOST_CHARS or ord(ch) < 32 for ch in host):
        raise ValueError(f"{host!r} is not a host name or address")
    if port_text is None:
        if default_port is None:
            raise ValueError("no port")
        return HostPort(host, default_port)
    if not port_text.isdigit() or int(port_text) > 65535 or (int(port_text) == 0 and not allow_port_zero):
        raise ValueError(f"bad port {port_text!r}: give a number from 1 to 65535")
    return HostPort(host, int(port_text))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    bare = host.strip("[]")
    return bare.startswith("127.") or bare in ("localhost", "::1")
