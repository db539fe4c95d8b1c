"""The recorder of a script that listens to ``events.request``: each request of loadgen's own client, and each
``measure()``, is also given to those listeners, with Locust's keyword arguments (``response_time`` in ms)."""

from __future__ import annotations

from typing import Any

from gevent import getcurrent

from loadgen.client.extras import REQUEST_CONTEXT
from loadgen.script.events import RequestFailure, events
from loadgen.stats.recorder import Recorder

USER_ATTRIBUTE = "loadgen_user"  # the user a greenlet runs (set by the runner): its context() goes along


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
                        context=user_context(), response=None, url=None, start_time=None)


def user_context() -> dict[str, Any]:
    """The running user's ``context()`` (Locust's: extra keys for its request events), with the request's own
    ``context=`` over it, or {}."""
    greenlet = getcurrent()
    user = getattr(greenlet, USER_ATTRIBUTE, None)
    context: dict[str, Any] = {}
    if user is not None:
        try:
            context.update(user.context())
        except Exception:  # noqa: BLE001,S110 - a broken context() must not lose the request
            pass
    own = getattr(greenlet, REQUEST_CONTEXT, None)
    if own is not None:
        delattr(greenlet, REQUEST_CONTEXT)
        if isinstance(own, dict):
            context.update(own)
    return context
