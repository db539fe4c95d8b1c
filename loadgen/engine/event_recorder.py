"""The recorder of a script that listens to ``events.request``: each request of loadgen's own client, and each
``measure()``, is also given to those listeners, with Locust's keyword arguments (``response_time`` in ms)."""

from __future__ import annotations

from loadgen.script.events import RequestFailure, events
from loadgen.stats.recorder import Recorder


class EventRecorder(Recorder):
    """A ``Recorder`` that calls the ``request`` listeners after recording (nothing more when none listen)."""

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None:
        Recorder.record(self, method, name, latency_us, nbytes, error, queued_us, ttfb_us, body_us, setup)
        hook = events.request
        if hook.listeners:
            hook.notify(request_type=method, name=name, response_time=(latency_us + queued_us) / 1000,
                        response_length=nbytes, exception=None if error is None else RequestFailure(error),
                        context={}, response=None, url=None, start_time=None)
