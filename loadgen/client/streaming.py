"""``stream=True`` at the session: the response returned once its head is in (`StreamedResponse`), its body
read as the script iterates it, the request recorded when the body ends (see `body_stream`)."""

from __future__ import annotations

from collections.abc import Iterator
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gevent import GreenletExit, Timeout
from geventhttpclient._parser import HTTPParseError

from .body_stream import BodyStream, StreamExchange
from .errors import ProtocolError, describe_failure
from .http11 import status_error
from .redirects import REDIRECTS, follow
from .response import Response

if TYPE_CHECKING:
    from .extras import Prepared


class StreamConsumedError(RuntimeError):
    """The body of a ``stream=True`` response was already read by iterating it."""


class StreamedResponse(Response):
    """A ``stream=True`` response: the body is read from the connection as the script iterates it
    (``iter_content``, ``iter_lines``) or reads it (``content``, ``text``, ``json()``, whole)."""

    __slots__ = ("_stream", "_limit", "_iterated")

    def attach_stream(self, stream: BodyStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit  # max_body: what .content keeps
        self._iterated = False

    @property
    def content(self) -> bytes:
        c = self._content
        if c is None:
            if self._iterated:
                raise StreamConsumedError("the body was already read by iter_content()/iter_lines()")
            body, self.truncated = self._stream.read_all(self._limit)
            self._sync()
            c = self._content = self._body = body
        return c

    def _pieces(self) -> Iterator[bytes]:
        if self._content is not None:
            yield self._content
            return
        if self._iterated:
            raise StreamConsumedError("the body was already read by iter_content()/iter_lines()")
        self._iterated = True
        try:
            yield from self._stream.chunks()
        finally:
            self._sync()

    def _sync(self) -> None:
        """Take the stream's figures once it has ended."""
        stream = self._stream
        if stream.done:
            self.latency_us = stream.latency_us
            self.nbytes = stream.prior + stream.nbytes
            if stream.error is not None and self.error is None:
                self.error = stream.error
            if self._pending is not None:
                self._phases = stream.phases()

    def close(self) -> None:
        """Stop reading the body: the request is recorded with what arrived (if not yet)."""
        self._stream.close()
        self._sync()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if isinstance(exc, (GreenletExit, Timeout)):  # killed while reading the body: cut off
            self._stream.interrupt()
        self.close()
        return super().__exit__(exc_type, exc, tb)


_TRANSPORT_ERRORS = (OSError, ProtocolError, HTTPParseError)


def stream_request(session: Any, method: str, path: str, name: str | None, prep: Prepared, ct: float | None,
                   rt: float | None, catch_response: bool, allow_redirects: bool) -> Response:
    """`HttpSession.request` with ``stream=True``: returns once the final response's head is in."""
    origin, target, wire = prep.origin, prep.target, prep.wire
    exchange = StreamExchange(session, allow_redirects)
    history: list[Response] | None = None
    t0 = perf_counter()
    try:
        status, head, rbody, nbytes, _ = exchange(origin, wire, method, ct, rt, t0)
        error = None if status < 400 else status_error(status, head)
        if allow_redirects and status in REDIRECTS:
            status, head, rbody, nbytes, _, origin, target, error, wire, history = follow(
                exchange, prep.encode_head, prep.resolve, session._max_redirects, method, origin, target,
                prep.headers, prep.body, prep.ctype, status, head, rbody, nbytes, 0, ct, rt, wire)
    except _TRANSPORT_ERRORS as exc:
        if exchange.last is not None:
            exchange.last.close()
        status, head, rbody, nbytes = 0, b"", b"", 0
        error = describe_failure(exc, origin, session.factory.settings)
    except (GreenletExit, Timeout):  # a forced stop, a fence, or an outer gevent.Timeout: cut off
        if exchange.last is not None:
            exchange.last.close()
        session.recorder.record_interrupted(method, path if name is None else name)
        raise
    stream = exchange.last if status else None
    end = perf_counter()
    latency_us = int((end - t0) * 1_000_000)
    if name is None:
        name = path
    timing = session._timing
    queued = timing.take_queued_us() if timing is not None and timing.queued_us else 0
    recorder = session.recorder
    if stream is None:  # no response, or a redirect's (too many, or no Location): its body was read
        resp = Response(status, head, rbody, latency_us, nbytes, error, origin.prefix, target, method, name, wire)
        phases = (exchange.ttfb_us, int((end - exchange.first_byte) * 1_000_000), exchange.setup)
        if catch_response:
            resp.record_on_exit(recorder, queued, phases if status else None)
        elif status:
            recorder.record(method, name, latency_us, nbytes, error, queued, *phases)
        else:
            recorder.record(method, name, latency_us, nbytes, error, queued)
    else:
        resp = StreamedResponse(status, head, b"", latency_us, nbytes, error, origin.prefix, target, method, name,
                                wire)
        resp.attach_stream(stream, session._max_body)
        stream.prior = nbytes - stream.nbytes
        if catch_response:
            resp.record_on_exit(recorder, queued, None)
        stream.attach(None if catch_response else recorder, method, name, t0, queued, error)
        resp._sync()
    if history is not None:
        resp._history = history
    return resp
