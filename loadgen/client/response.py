"""`Response`: what a request returns; headers and text are decoded only when read."""

from __future__ import annotations

import datetime
import json as _json
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gevent import GreenletExit, Timeout

from .chunks import as_text, resized, split_lines
from .codings import decode
from .cookies import CookieJar
from .errors import CatchResponseError, ContentDecodingError, ResponseError
from .prepared import PreparedRequest

if TYPE_CHECKING:
    from .interfaces import RequestSink


class HTTPError(Exception):
    """Raised by `Response.raise_for_status()` for a failed request."""

    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response = response


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of response headers; repeated fields join with ", "."""

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        index: dict[str, tuple[str, str]] = {}
        for name, value in fields:
            key = name.lower()
            old = index.get(key)
            index[key] = (name, value) if old is None else (old[0], f"{old[1]}, {value}")
        self._index = index

    @classmethod
    def parse(cls, head: bytes) -> Headers:
        """Parse the header block of `head` (status line first, no final blank line)."""
        fields: list[tuple[str, str]] = []
        lines = head.decode("latin-1").split("\r\n")
        for line in lines[1:]:
            if not line:
                continue
            if line[0] in " \t" and fields:  # obsolete line folding
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}")
                continue
            name, sep, value = line.partition(":")
            if sep:
                fields.append((name.strip(), value.strip()))
        return cls(fields)

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()][1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._index.values())

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, key: str) -> list[str]:
        """Every value of a repeated field (e.g. Set-Cookie), in order."""
        k = key.lower()
        return [v for n, v in self._fields if n.lower() == k]

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


_NO_HEADERS = Headers([])
_NO_HISTORY: list[Response] = []  # shared by every response that was not redirected: do not append to it


class Response:
    """One HTTP exchange's result. `error` is None on success, else the failure message.

    With `catch_response=True` the response is a context manager: call `success()` or
    `failure(msg)` inside the with-block; the request is recorded at `__exit__`.
    """

    __slots__ = (
        "status_code",
        "_head",
        "_body",
        "_headers",
        "_content",
        "latency_us",
        "nbytes",
        "error",
        "_origin",
        "_target",
        "truncated",
        "_pending",
        "method",
        "name",
        "queued_us",
        "_phases",
        "_wire",
        "_history",
        "_jar",
        "_request",
        "js",  # rest(): the parsed JSON body
    )
    # set only when needed (a redirect) or first read: no cost per request
    _history: list[Response]
    _jar: CookieJar
    _request: PreparedRequest

    def __init__(
        self,
        status_code: int,
        head: bytes,
        body: bytes,
        latency_us: int,
        nbytes: int,
        error: str | None,
        origin: str,
        target: str,
        method: str = "",
        name: str = "",
        wire: bytes = b"",
    ) -> None:
        self.status_code = status_code
        self._head = head
        self._body = body
        self._headers: Headers | None = None
        self._content: bytes | None = None
        self.latency_us = latency_us
        self.nbytes = nbytes
        self.error = error
        self._origin = origin
        self._target = target
        self.truncated = False
        self._pending: RequestSink | None = None
        self.method = method
        self.name = name
        self.queued_us = 0
        self._phases: tuple[int, int, tuple[int, int, int] | None] | None = None
        self._wire = wire

    # -- lazily decoded views ------------------------------------------------------------
    @property
    def headers(self) -> Headers:
        h = self._headers
        if h is None:
            h = self._headers = Headers.parse(self._head) if self._head else _NO_HEADERS
        return h

    @property
    def reason(self) -> str:
        line = self._head.split(b"\r\n", 1)[0]
        parts = line.split(b" ", 2)
        return parts[2].decode("latin-1") if len(parts) == 3 else ""

    @property
    def content(self) -> bytes:
        c = self._content
        if c is None:
            c = self._content = self._decode_body()
        return c

    def _decode_body(self) -> bytes:
        body = self._body
        if not body:
            return body
        coding = self.headers.get("content-encoding")
        if not coding:
            return body
        try:
            return decode(body, coding)
        except ContentDecodingError:
            if self.truncated:  # cut at max_body: the raw bytes are all there is
                return body
            raise

    def decode_content(self) -> str | None:
        """Decode the body now (the session does so for every encoded body, as requests does);
        returns the failure to record for a body that does not decode, else None."""
        try:
            self._content = self._decode_body()
        except ContentDecodingError as exc:
            self._content = self._body
            return f"ContentDecodingError: {exc}"
        return None

    @property
    def encoding(self) -> str:
        ctype = self.headers.get("content-type", "")
        for param in ctype.split(";")[1:]:
            k, _, v = param.partition("=")
            if k.strip().lower() == "charset":
                return v.strip().strip('"') or "utf-8"
        return "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return _json.loads(self.content, **kwargs)

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        """The body in pieces of at most `chunk_size` bytes (None: as they arrived), as str with
        `decode_unicode`; with ``stream=True`` they are read from the network as you iterate."""
        pieces = resized(self._pieces(), chunk_size)
        return as_text(pieces, self.encoding) if decode_unicode else pieces

    def iter_lines(self, chunk_size: int | None = 512, decode_unicode: bool = False,
                   delimiter: Any = None) -> Iterator[Any]:
        """The body's lines without their line ends (blank lines kept, as server-sent events need);
        split at `delimiter` if given. With ``stream=True`` each line comes as soon as it has arrived."""
        return split_lines(self.iter_content(chunk_size, decode_unicode), delimiter)

    def _pieces(self) -> Iterator[bytes]:
        content = self.content
        if content:
            yield content

    def close(self) -> None:
        """Release the connection (a no-op: the body was read whole; see ``stream=True``)."""

    @property
    def elapsed(self) -> datetime.timedelta:
        return datetime.timedelta(microseconds=self.latency_us)

    @property
    def url(self) -> str:
        return self._origin + self._target

    @property
    def history(self) -> list[Response]:
        """The redirect responses that led here, oldest first (empty if none)."""
        try:
            return self._history
        except AttributeError:
            return _NO_HISTORY

    @property
    def cookies(self) -> CookieJar:
        """The cookies this response set (a jar read like a dict: ``get``, ``[name]``, ``get_dict()``)."""
        try:
            return self._jar
        except AttributeError:
            jar = self._jar = CookieJar()
            if self._head:
                jar.extract(self.url, self._head)
            return jar

    @property
    def request(self) -> PreparedRequest:
        """The request that got this response: ``method``, ``url``, ``headers`` and ``body`` as sent."""
        try:
            return self._request
        except AttributeError:
            req = self._request = PreparedRequest.from_wire(self._origin, self._wire)
            return req

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise HTTPError(self.error, self)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]{' ' + self.error if self.error else ''}>"

    # -- catch_response ------------------------------------------------------------------
    def success(self) -> None:
        """Mark the request as successful (catch_response only)."""
        self._require_pending()
        self.error = None

    def failure(self, message: object) -> None:
        """Mark the request as failed with `message` (catch_response only)."""
        self._require_pending()
        if isinstance(message, BaseException):
            message = f"{type(message).__name__}: {message}"
        self.error = str(message)

    def record_on_exit(self, sink: RequestSink, queued_us: int,
                       phases: tuple[int, int, tuple[int, int, int] | None] | None = None) -> None:
        """catch_response: the with-block's end records this response (as success()/failure() left it),
        with its phases (ttfb µs, body µs, setup) when it got a response."""
        self._pending = sink
        self.queued_us = queued_us
        self._phases = phases

    def _require_pending(self) -> None:
        if self._pending is None:
            raise RuntimeError("success()/failure() need catch_response=True and the with-block")

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        sink = self._pending
        if sink is None:
            return False
        self._pending = None
        verdict = False
        if exc is not None:
            if not isinstance(exc, Exception):  # GreenletExit, gevent.Timeout: cut off before its verdict
                if isinstance(exc, (GreenletExit, Timeout)):
                    sink.record_interrupted(self.method, self.name)
                return False
            verdict = isinstance(exc, (ResponseError, CatchResponseError))  # the failure's message, no more
            self.error = str(exc) if verdict else f"{type(exc).__name__}: {exc}"
        phases = self._phases
        if phases is None:
            sink.record(self.method, self.name, self.latency_us, self.nbytes, self.error, self.queued_us)
        else:
            sink.record(self.method, self.name, self.latency_us, self.nbytes, self.error, self.queued_us, *phases)
        return verdict
