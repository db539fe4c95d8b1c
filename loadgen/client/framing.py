"""The llhttp parser (geventhttpclient's) as the connection's slow-path framer: collects one response's
body, at most `max_body` bytes of it, for chunked, close-delimited, HEAD and 1xx/204/304 responses."""

from __future__ import annotations

from geventhttpclient._parser import HTTPResponseParser

from .errors import ProtocolError
from .http11 import head_for_llhttp


def for_llhttp(buf: bytes, head: bytes, lhead: bytes) -> tuple[bytes, bytes]:
    """(`buf`, `head`) with the head as llhttp accepts it (`http11.head_for_llhttp`); `buf` starts with
    `head` and `lhead` is it in lower case. Raises `ProtocolError` for invalid or conflicting lengths."""
    if b"\r\ncontent-length:" not in lhead:
        return buf, head
    try:
        fixed = head_for_llhttp(head, lhead)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    if fixed is head:
        return buf, head
    return fixed + buf[len(head) :], fixed


class BodyParser(HTTPResponseParser):
    """llhttp callbacks collecting one response's body; headers come from our raw head."""

    def __init__(self, head_only: bool, max_body: int) -> None:
        super().__init__()
        self.head_only = head_only
        self.max_body = max_body
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False
        self.begun = 0
        self.done = False

    def _on_message_begin(self) -> None:
        self.begun += 1

    def _on_status(self, _s: str) -> None:
        pass

    def _on_header_field(self, _s: str) -> None:
        pass

    def _on_header_value(self, _s: str) -> None:
        pass

    def _on_headers_complete(self) -> bool:
        return self.head_only and self.get_code() >= 200

    def _on_body(self, data: bytes) -> None:
        room = self.max_body - self.size
        if len(data) > room:
            self.truncated = True
            if room <= 0:
                return
            data = data[:room]
        self.chunks.append(bytes(data))
        self.size += len(data)

    def _on_message_complete(self) -> None:
        if self.get_code() >= 200:
            self.done = True
