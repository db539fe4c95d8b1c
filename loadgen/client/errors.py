"""The client's transport errors; failures are reported by class name ("ReadTimeout: ...")."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import ClientSettings
    from .urls import Origin


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.x response."""


class ConnectTimeout(TimeoutError):
    """Connecting (TCP or TLS handshake) took longer than the connect timeout."""


class ReadTimeout(TimeoutError):
    """No response bytes arrived within the read timeout."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the response was complete."""


class ProxyError(ConnectionError):
    """The proxy could not be reached, or refused to open a tunnel (CONNECT) to the target."""


class StaleConnection(ConnectionError):
    """A reused keep-alive connection failed before any response byte arrived.

    `unsent`: not one byte of the request left (the first send failed), so a retry is safe for any
    method; otherwise the server may have read (and acted on) the request, and only an idempotent
    method may be sent again."""

    def __init__(self, message: str, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class ContentDecodingError(ValueError):
    """The response body does not decode with its Content-Encoding (corrupt gzip, ...)."""


_CLIENT_CERT_HINTS = ("certificate required", "alert handshake failure", "alert bad certificate")


def not_resent(exc: StaleConnection, method: str, retried: bool) -> str:
    """Why a request that met a closing keep-alive connection is reported, not sent again."""
    if retried:
        return f"{exc} (also on a second connection)"
    return f"{exc}; {method} not sent again: the server may have processed it (not idempotent)"


def describe_failure(exc: BaseException, origin: Origin, settings: ClientSettings) -> str:
    """The failure recorded for a transport error ("ClassName: message"), with a hint where the
    bare error misleads (a TLS server that wants a client certificate)."""
    message = f"{type(exc).__name__}: {exc}"
    if origin.tls and settings.client_cert is None and isinstance(exc, ssl.SSLError):
        text = str(exc).lower()
        if isinstance(exc, ssl.SSLEOFError) or any(hint in text for hint in _CLIENT_CERT_HINTS):
            message += (" (the server ended the TLS session; if it requires a client certificate, give one "
                        "with --client-cert/--client-key)")
    return message


class ResponseError(Exception):
    """Raise inside a ``catch_response`` block: the response fails with this message, and the task goes on."""


class CatchResponseError(Exception):
    """Locust's name for the same: the response fails with this message, and the task goes on."""
