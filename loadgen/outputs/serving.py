"""What the live outputs share: listen addresses, a gevent WSGI server, strict JSON, shipped assets."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from loadgen.model.addresses import parse_host_port
from loadgen.model.errors import UsageError


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


def start_server(option: str, value: str, host: str, port: int, app: Any) -> Any:
    """Bind and start a gevent WSGI server; errors (port in use, bad host) become one-line UsageErrors."""
    from gevent.pywsgi import WSGIServer

    server = WSGIServer((host, port), app, log=None, error_log=logging.getLogger("loadgen.outputs.http"))
    try:
        server.start()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UsageError(f"{option} {value}: cannot listen on {host}:{port} ({reason}): "
                         "choose another address or port") from None
    return server


def server_url(server: Any) -> str:
    host, port = server.address[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


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
