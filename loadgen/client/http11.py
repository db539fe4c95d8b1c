"""Pure HTTP/1.1 response-head logic (no I/O): connection reuse and the status line.

The per-request framing in `Connection.roundtrip` keeps its byte searches inline (a call per
request costs more than the search); what lives here runs only on the less common paths.
"""

from __future__ import annotations


def keep_alive(head: bytes, lhead: bytes) -> bool:
    """Whether the response allows reusing the connection (Connection header, HTTP version).

    `lhead` is `head` in lower case."""
    tokens: set[str] = set()
    pos = lhead.find(b"\r\nconnection:")
    while pos >= 0:
        end = lhead.find(b"\r\n", pos + 2)
        value = lhead[pos + 13 : end if end >= 0 else len(lhead)]
        tokens.update(t.strip() for t in value.decode("latin-1").split(","))
        pos = lhead.find(b"\r\nconnection:", pos + 2)
    if "close" in tokens:
        return False
    if head[5:8] == b"1.0":
        return "keep-alive" in tokens
    return True


def is_interim(head: bytes) -> bool:
    """Whether `head` (or a buffer starting with it) is an interim 1xx response."""
    return head[9:10] == b"1" and head[:7] == b"HTTP/1."


def status_error(status: int, head: bytes) -> str:
    """The failure reported for an HTTP error status: "HTTPError: 404 Not Found"."""
    line = head.split(b"\r\n", 1)[0].split(b" ", 2)
    reason = line[2].decode("latin-1") if len(line) == 3 else ""
    return f"HTTPError: {status} {reason}".rstrip()


TRUNCATED = 1
"""Response flag: the body was longer than max_body and is cut."""
ENCODED = 2
"""Response flag: the head has a Content-Encoding (the body is to be decoded)."""
SETS_COOKIES = 4
"""Response flag: the head has a Set-Cookie."""

STATUS_FIELDS: dict[bytes, int] = {
    b" %d%s" % (code, after): code for code in range(100, 1000) for after in (b" ", b"\r", b"")
}
"""What may follow ``HTTP/1.x`` in a valid status line, bytes 8 to 13 of the head: a space, three
digits, then a space, the end of the line, or the end of a head that is only the status line."""


def valid_status_line(head: bytes) -> bool:
    """``HTTP/1.x``, a space, three digits, then a space or the end of the line (RFC 9112 §4)."""
    return (
        head[:7] == b"HTTP/1."
        and head[7:8].isdigit()
        and head[8:9] == b" "
        and head[9:12].isdigit()
        and head[12:13] in (b" ", b"\r", b"")
    )


def content_length(lhead: bytes, pos: int) -> int:
    """The Content-Length of a lower-cased head whose first such field starts at `pos`
    (``\\r\\ncontent-length:``). Repeated fields and comma lists must all agree; every value is
    1*DIGIT (no sign, no underscore, no space inside). Raises `ValueError` otherwise."""
    values: set[bytes] = set()
    while pos >= 0:
        end = lhead.find(b"\r\n", pos + 17)
        for item in lhead[pos + 17 : end if end >= 0 else len(lhead)].split(b","):
            item = item.strip(b" \t")
            if not item.isdigit():
                raise ValueError(f"invalid Content-Length {bytes(item[:20])!r}")
            values.add(item.lstrip(b"0") or b"0")
        pos = lhead.find(b"\r\ncontent-length:", pos + 17)
    if len(values) != 1:
        raise ValueError("conflicting Content-Length values")
    return int(values.pop())


def keep_alive_timeout(lhead: bytes) -> float | None:
    """The ``timeout=`` of a ``Keep-Alive`` response field (seconds), or None."""
    pos = lhead.find(b"\r\nkeep-alive:")
    if pos < 0:
        return None
    end = lhead.find(b"\r\n", pos + 13)
    for param in lhead[pos + 13 : end if end >= 0 else len(lhead)].split(b","):
        name, _, value = param.partition(b"=")
        if name.strip() == b"timeout":
            try:
                seconds = float(value.strip().strip(b'"'))
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None


def with_one_content_length(head: bytes, lhead: bytes, length: int) -> bytes:
    """`head` with its (agreeing) Content-Length fields replaced by one: llhttp refuses repeats."""
    lines = head.split(b"\r\n")
    llines = lhead.split(b"\r\n")
    kept = [line for line, low in zip(lines, llines) if not low.startswith(b"content-length:")]
    kept.append(b"Content-Length: %d" % length)
    return b"\r\n".join(kept)


def head_for_llhttp(head: bytes, lhead: bytes) -> bytes:
    """`head` as llhttp accepts it: llhttp refuses a repeated Content-Length and one next to
    Transfer-Encoding, which requests accepts when the values agree. Chunked wins over a length
    (RFC 9112 section 6.3); agreeing lengths become one. Raises `ValueError` for invalid or
    conflicting lengths; returns `head` itself when nothing needs changing."""
    j = lhead.find(b"\r\ncontent-length:")
    if j < 0:
        return head
    length = content_length(lhead, j)
    if b"\r\ntransfer-encoding:" in lhead:
        return b"\r\n".join(ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"content-length:"))
    end = lhead.find(b"\r\n", j + 17)
    if lhead.find(b"\r\ncontent-length:", j + 17) >= 0 or b"," in lhead[j : end if end >= 0 else None]:
        return with_one_content_length(head, lhead, length)
    return head
