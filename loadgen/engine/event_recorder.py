"""The recorder of a script that listens to ``events.request``: each request of loadgen's own client, and each
``measure()``, is also given to those listeners, with Locust's keyword arguments (``response_time`` in ms),
the ``response`` and its ``url`` included (``ObservedSession`` hands them over)."""

from __future__ import annotations

import time
from typing import Any

from gevent import getcurrent

from loadgen.client.extras import REQUEST_CONTEXT
from loadgen.client.session import HttpSession
from loadgen.script.events import RequestFailure, events
from loadgen.stats.recorder import Recorder

USER_ATTRIBUTE = "loadgen_user"  # the user a greenlet runs (set by the runner): its context() goes along
HELD = "loadgen_held_event"  # inside ObservedSession.request: the event waits for its response
RESPONSE = "loadgen_response"  # a catch_response or stream=True response, recorded later


class EventRecorder(Recorder):
    """A ``Recorder`` that calls the ``request`` listeners after recording (nothing more when none listen)."""

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None:
        Recorder.record(self, method, name, latency_us, nbytes, error, queued_us, ttfb_us, body_us, setup)
        hook = events.request
        if hook.listeners:
            event = {"request_type": method, "name": name, "response_time": (latency_us + queued_us) / 1000,
                     "response_length": nbytes, "exception": None if error is None else RequestFailure(error),
                     "context": user_context(), "response": None, "url": None,
                     "start_time": time.time() - (latency_us + queued_us) / 1e6}
            greenlet = getcurrent()
            if getattr(greenlet, HELD, None) is not None:
                setattr(greenlet, HELD, event)  # the session adds the response, then notifies
                return
            response = getattr(greenlet, RESPONSE, None)
            if response is not None:
                delattr(greenlet, RESPONSE)
                with_response(event, response)
            hook.notify(**event)


    def record_quiet(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
                     queued_us: int = 0) -> None:
        """Record without calling the listeners (``events.request.fire`` calls them itself)."""
        Recorder.record(self, method, name, latency_us, nbytes, error, queued_us)


class ObservedSession(HttpSession):
    """``self.client`` of a script that listens to ``events.request``: each event gets its response."""

    __slots__ = ()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if not events.request.listeners:  # nobody listens: the plain request
            return HttpSession.request(self, *args, **kwargs)
        greenlet = getcurrent()
        if getattr(greenlet, RESPONSE, None) is not None:  # an earlier response never recorded: not this one's
            delattr(greenlet, RESPONSE)
        setattr(greenlet, HELD, HOLD)
        try:
            response = HttpSession.request(self, *args, **kwargs)
        finally:
            event = getattr(greenlet, HELD, HOLD)
            setattr(greenlet, HELD, None)
        if event is HOLD:  # recorded later (catch_response, stream=True): the event will find it
            setattr(greenlet, RESPONSE, response)
        elif events.request.listeners:
            with_response(event, response)
            events.request.notify(**event)
        return response


HOLD: dict[str, Any] = {}  # the marker of a request whose event is held


def with_response(event: dict[str, Any], response: Any) -> None:
    """The response, its URL and (as Locust's) its body's length."""
    event["response"], event["url"] = response, getattr(response, "url", None)
    try:
        event["response_length"] = len(response.content or b"")
    except Exception:  # noqa: BLE001,S110 - a body that cannot be read keeps the bytes received
        pass


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
