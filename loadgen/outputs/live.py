"""Live outputs attached to a running test: the ZeroMQ stream, the web API/dashboard and Prometheus.

``attach_outputs(controller, options)`` starts the ones the options ask for and subscribes them to the
controller's once-a-second snapshots. Each output has ``on_snapshot(snapshot)``, ``on_report(report)`` and
``close()``. ``loadgen run`` and ``loadgen master`` call ``close()`` when the test loop ends and
``on_report()`` once the report is written; either order works: the outputs stay up until the report has
been published (or a grace period passed without one), then shut down.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("loadgen.outputs")
REPORT_GRACE = 15.0  # seconds the outputs wait for the report after close()


class LiveOutputs:
    """The set of live outputs of one test; each gets every snapshot and the final report."""

    def __init__(self, controller: Any = None) -> None:
        self.controller = controller
        self.outputs: list[Any] = []
        self.report: dict | None = None
        self._closing = False
        self._closed = False
        self._timer: Any = None

    # ---- snapshots ----------------------------------------------------------------------------------------
    def on_snapshot(self, snapshot: dict) -> None:
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

            live.outputs.append(WebOutput(options.web, controller, token=getattr(options, "web_token", None),
                                          private=getattr(options, "web_private", False),
                                          certfile=getattr(options, "web_cert", None),
                                          keyfile=getattr(options, "web_key", None)))
        if getattr(options, "csv_full_history", False) and getattr(options, "csv_prefix", None):
            from loadgen.outputs.csv_history import CsvHistoryOutput

            live.outputs.append(CsvHistoryOutput(options.csv_prefix))
        if getattr(options, "prometheus", None):
            from loadgen.outputs.prometheus import PrometheusOutput

            live.outputs.append(PrometheusOutput(options.prometheus, controller))
    except BaseException:
        live._shutdown()
        raise
    for output in live.outputs:
        where = getattr(output, "url", None)
        if where:
            line = getattr(output, "announcement", None) or f"loadgen: {output.describe} on {where}"
            print(line, file=sys.stderr, flush=True)
    if live.outputs:
        controller.listeners.append(live.on_snapshot)
    return live
