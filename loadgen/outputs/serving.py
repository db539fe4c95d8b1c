"""What the live outputs share: listen addresses, a gevent WSGI server (plain or TLS), strict JSON, assets."""

from __future__ import annotations

import functools
import json
import logging
import math
from typing import Any

from loadgen.model.addresses import parse_host_port
from loadgen.model.errors import UsageError

log = logging.getLogger("loadgen.outputs.http")


def read_asset(name: str) -> str:
    """A file shipped in loadgen/outputs/ (dashboard.html, report.html, charts.js)."""
    from importlib import resources

    return resources.files("loadgen.outputs").joinpath(name).read_text(encoding="utf-8")


def parse_listen(option: str, value: str, example_port: int) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``, ``[::1]:PORT``) → ``(host, port)``; a one-line UsageError otherwise."""
    try:
        address = parse_host_port(value, default_host="127.0.0.1", schemes=("http://", "tcp://"),
                                  allow_port_zero=True)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r}: {exc}; use HOST:PORT, e.g. {option} 127.0.0.1:{example_port}") \
            from None
    return address.host, address.port


def tls_context(option: str, certfile: str | None, keyfile: str | None) -> Any:
    """A server SSLContext for ``{option}-cert`` and ``{option}-key``, or None without either; a one-line
    UsageError for only one of them, a file that cannot be read, or a key that does not match."""
    if not certfile and not keyfile:
        return None
    cert_option, key_option = f"{option}-cert", f"{option}-key"
    if not keyfile or not certfile:
        given, missing = (cert_option, key_option) if certfile else (key_option, cert_option)
        raise UsageError(f"{given} needs {missing}: give both, e.g. {cert_option} cert.pem {key_option} key.pem")
    for name, path in ((cert_option, certfile), (key_option, keyfile)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"{name} {path}: cannot read it ({exc.strerror or exc}): give a readable PEM file") \
                from None
    import ssl

    from gevent import ssl as gssl

    context = gssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise UsageError(f"{cert_option} {certfile} {key_option} {keyfile}: not a PEM certificate and its "
                         f"private key ({reason})") from None
    return context


def start_server(option: str, value: str, host: str, port: int, app: Any, ssl_context: Any = None) -> Any:
    """Bind and start a gevent WSGI server (HTTPS with ``ssl_context``); errors (port in use, bad host) become
    one-line UsageErrors."""
    tls = {} if ssl_context is None else {"ssl_context": ssl_context}
    server = _server_class()((host, port), app, log=None, error_log=logging.getLogger("loadgen.outputs.http"),
                             **tls)
    try:
        server.start()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UsageError(f"{option} {value}: cannot listen on {host}:{port} ({reason}): "
                         "choose another address or port") from None
    return server


@functools.cache
def _server_class() -> type:
    """gevent's WSGIServer, quiet about failed TLS handshakes (a plain-HTTP client, a scanner): they are logged
    at debug level instead of printing a traceback for each."""
    from gevent.pywsgi import WSGIServer

    class Server(WSGIServer):
        def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
            try:
                return super().wrap_socket_and_handle(client_socket, address)
            except OSError as exc:  # ssl.SSLError is an OSError
                log.debug("connection from %s failed: %s", address, exc)
                return None

    return Server


def server_url(server: Any) -> str:
    host, port = server.address[:2]
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if getattr(server, "ssl_enabled", False) else "http"
    return f"{scheme}://{host}:{port}"


def to_json(value: Any) -> bytes:
    """Strict, compact JSON (NaN/inf → null; unknown objects → str), UTF-8."""
    return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
