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
