"""Live outputs attached to a running test: the ZeroMQ stream, the web API/dashboard and Prometheus.

``attach_outputs(controller, options)`` starts the ones the options ask for and subscribes them to the
controller's once-a-second snapshots. Each output has ``on_snapshot(snapshot)``, ``on_report(report)`` and
``close()``. ``loadgen run`` and ``loadgen master`` call ``close()`` when the test loop ends and
``on_report()`` once the report is written; either order works: the outputs stay up until the report has
been published (or a grace period passed without one), then shut down.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

from loadgen.errors import UsageError

log = logging.getLogger("loadgen.outputs")
REPORT_GRACE = 15.0  # seconds the outputs wait for the report after close()


def read_asset(name: str) -> str:
    """A file shipped in loadgen/outputs/ (dashboard.html, report.html, charts.js)."""
    from importlib import resources

    return resources.files("loadgen.outputs").joinpath(name).read_text(encoding="utf-8")


def parse_listen(option: str, value: str, example_port: int) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``, ``[::1]:PORT``) → ``(host, port)``; a one-line UsageError otherwise."""
    text = (value or "").strip()
    for prefix in ("http://", "tcp://"):
        if text.startswith(prefix):
            text = text[len(prefix):].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535 or (sep and not host) or any(c in host for c in " /?#@"):
        raise UsageError(f"{option} {value!r}: use HOST:PORT, e.g. {option} 127.0.0.1:{example_port}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("localhost", "::1")


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


class LiveOutputs:
    """The set of live outputs of one test; each gets every snapshot and the final report."""

    def __init__(self, controller: Any = None) -> None:
        self.controller = controller
        self.outputs: list[Any] = []
        self.report: dict | None = None
        self._prev_requests: dict[tuple[str, str], int] = {}
        self._prev_elapsed = 0.0
        self._closing = False
        self._closed = False
        self._timer: Any = None

    # ---- snapshots ---------------------------------------------------------------------------------------
    def enrich(self, snapshot: dict) -> None:
        """Add what the live outputs need and the aggregate does not compute: per-endpoint current req/s,
        the wall-clock time of the tick (``ts``, for staleness checks), the state and the load model."""
        elapsed = float(snapshot.get("elapsed", 0.0))
        interval = max(1e-3, elapsed - self._prev_elapsed)
        previous = self._prev_requests
        current: dict[tuple[str, str], int] = {}
        for row in snapshot.get("endpoints", ()):
            key = (row["method"], row["name"])
            current[key] = row["requests"]
            row["rps"] = round((row["requests"] - previous.get(key, 0)) / interval, 1)
        self._prev_requests = current
        self._prev_elapsed = elapsed
        controller = self.controller
        if controller is not None:
            snapshot["ts"] = round(controller.aggregate.started_at + elapsed, 3)
            snapshot["model"] = "open" if controller.plan.open_model else "closed"
            if controller.plan.open_model:
                snapshot["rate"] = controller.plan.arrival_rate
        snapshot["state"] = "running"

    def on_snapshot(self, snapshot: dict) -> None:
        self.enrich(snapshot)
        for output in self.outputs:
            try:
                output.on_snapshot(snapshot)
            except Exception:  # noqa: BLE001 - one broken output must not starve the others
                log.debug("live output %s failed on a snapshot", type(output).__name__, exc_info=True)

    # ---- end of test -------------------------------------------------------------------------------------
    def on_report(self, report: dict) -> None:
        if self.report is not None or self._closed:
            return
        self.report = report
        for output in self.outputs:
            try:
                output.on_report(report)
            except Exception:  # noqa: BLE001
                log.debug("live output %s failed on the report", type(output).__name__, exc_info=True)
        if self._closing:
            self._shutdown()

    def close(self) -> None:
        """End of the test loop: shut down now if the report is out, else once it is (or after a grace)."""
        if self._closing:
            return
        self._closing = True
        if self.report is not None or not self.outputs:
            self._shutdown()
            return
        import gevent

        self._timer = gevent.spawn_later(REPORT_GRACE, self._shutdown)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.kill(block=False)
        for output in self.outputs:
            try:
                output.close()
            except Exception:  # noqa: BLE001
                log.debug("closing live output %s failed", type(output).__name__, exc_info=True)


def attach_outputs(controller: Any, options: Any) -> LiveOutputs:
    """Start the live outputs the options ask for and subscribe them to the controller's snapshots.

    Raises a one-line UsageError for a bad address or a port in use (after closing what it started)."""
    live = LiveOutputs(controller)
    try:
        if getattr(options, "stream", None):
            from loadgen.outputs.stream import StreamOutput

            live.outputs.append(StreamOutput(options.stream))
        if getattr(options, "web", None):
            from loadgen.outputs.web import WebOutput

            live.outputs.append(WebOutput(options.web, controller))
        if getattr(options, "prometheus", None):
            from loadgen.outputs.prometheus import PrometheusOutput

            live.outputs.append(PrometheusOutput(options.prometheus, controller))
    except BaseException:
        live._shutdown()
        raise
    for output in live.outputs:
        where = getattr(output, "url", None)
        if where:
            print(f"loadgen: {output.describe} on {where}", file=sys.stderr, flush=True)
    if live.outputs:
        controller.listeners.append(live.on_snapshot)
    return live
