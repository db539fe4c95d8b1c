"""The client's transport errors; failures are reported by class name ("ReadTimeout: ...")."""

from __future__ import annotations


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.x response."""


class ConnectTimeout(TimeoutError):
    """Connecting (TCP or TLS handshake) took longer than the connect timeout."""


class ReadTimeout(TimeoutError):
    """No response bytes arrived within the read timeout."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the response was complete."""


class StaleConnection(ConnectionError):
    """A reused keep-alive connection failed before any response byte: safe to retry."""
