"""Lean HTTP/1.x request-head parsing and response-head building (bytes in, bytes out, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

MAX_HEAD = 64 * 1024
SERVER = b"Server: loadgen-target\r\n"
TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}


class BadRequest(Exception):
    """The request cannot be parsed; answer with ``status`` and close the connection."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Request:
    """One parsed request head. Header values other than the framing ones are parsed on demand."""

    __slots__ = ("method", "target", "path", "http10", "keep_alive", "length", "chunked", "expect_continue",
                 "head", "body", "number")

    def __init__(self, method: bytes, target: bytes, http10: bool, head: bytes) -> None:
        self.method = method
        self.target = target
        q = target.find(b"?")
        self.path = target if q < 0 else target[:q]
        self.http10 = http10
        self.keep_alive = not http10
        self.length = 0
        self.chunked = False
        self.expect_continue = False
        self.head = head
        self.body = b""
        self.number = 0

    def headers(self) -> list[tuple[str, str]]:
        """All header fields in order, names as sent."""
        out: list[tuple[str, str]] = []
        for line in self.head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                out.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        return out


def _value(lower: bytes, name: bytes) -> bytes | None:
    """The (lower-cased, stripped) value of the first header ``name`` (``b"\\r\\nname:"``) or None."""
    i = lower.find(name)
    if i < 0:
        return None
    end = lower.find(b"\r\n", i + 2)
    return lower[i + len(name): end if end >= 0 else len(lower)].strip()


def parse_head(head: bytes) -> Request:
    """Parse a request head (everything before the blank line, without it)."""
    eol = head.find(b"\r\n")
    parts = (head if eol < 0 else head[:eol]).split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1].startswith((b"/", b"*", b"http")):
        raise BadRequest("malformed request line")
    method, target, version = parts
    if version == b"HTTP/1.1":
        req = Request(method, target, False, head)
    elif version == b"HTTP/1.0":
        req = Request(method, target, True, head)
    else:
        raise BadRequest("unsupported HTTP version", 505)
    if eol < 0:
        return req
    lower = head.lower()
    conn = _value(lower, b"\r\nconnection:")
    if conn is not None:
        if b"close" in conn:
            req.keep_alive = False
        elif b"keep-alive" in conn:
            req.keep_alive = True
    te = _value(lower, b"\r\ntransfer-encoding:")
    if te is not None and b"chunked" in te:
        req.chunked = True
    else:
        cl = _value(lower, b"\r\ncontent-length:")
        if cl is not None:
            if not cl.isdigit():
                raise BadRequest("bad Content-Length")
            req.length = int(cl)
    if b"\r\nexpect:" in lower:
        req.expect_continue = _value(lower, b"\r\nexpect:") == b"100-continue"
    return req


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
        if len(_STATUS_LINES) < 1000:
            _STATUS_LINES[status] = line
    return line


def response_head(status: int, length: int | None, content_type: bytes | None, connection: bytes | None,
                  extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """Build a response head. ``length`` None means chunked; ``connection`` is ``close``/``keep-alive``/None."""
    parts = [status_line(status), SERVER]
    if content_type:
        parts += (b"Content-Type: ", content_type, b"\r\n")
    if length is None:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    elif status != 204 and status != 304:
        parts.append(b"Content-Length: %d\r\n" % length)
    if connection:
        parts += (b"Connection: ", connection, b"\r\n")
    for name, value in extra:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    parts.append(b"\r\n")
    return b"".join(parts)
