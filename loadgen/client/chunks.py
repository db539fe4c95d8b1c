"""Pure helpers for reading a body in pieces (``iter_content``/``iter_lines``): no I/O."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import AnyStr


def resized(pieces: Iterable[bytes], size: int | None) -> Iterator[bytes]:
    """`pieces` cut to at most `size` bytes each (None: as they come). Like requests over a chunked
    stream, a piece is yielded as soon as it arrives: nothing waits for `size` bytes to gather."""
    if size is None:
        yield from pieces
        return
    if size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, not {size!r}")
    for piece in pieces:
        if len(piece) <= size:
            yield piece
            continue
        for i in range(0, len(piece), size):
            yield piece[i : i + size]


def as_text(pieces: Iterable[bytes], encoding: str) -> Iterator[str]:
    """`pieces` decoded as `encoding` (invalid bytes replaced), a character split across pieces kept whole."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for piece in pieces:
        text = decoder.decode(piece)
        if text:
            yield text
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


def split_lines(pieces: Iterable[AnyStr], delimiter: AnyStr | None = None) -> Iterator[AnyStr]:
    """The lines the text `pieces` make, without their line ends: split at `delimiter`, or (None) where
    ``splitlines`` splits, a CR LF split across two pieces counted once. Blank lines are kept (SSE)."""
    pending: AnyStr | None = None
    for piece in pieces:
        if pending:
            piece = pending + piece
        if delimiter is not None:
            lines = piece.split(delimiter)
            pending = lines.pop()
            yield from lines
            continue
        lines = piece.splitlines(True)
        pending = lines.pop() if lines else piece[:0]
        if pending and _ended(pending):
            lines.append(pending)
            pending = piece[:0]
        for line in lines:
            yield line.splitlines()[0]
    if pending:
        yield pending if delimiter is not None else pending.splitlines()[0]


def _ended(line: AnyStr) -> bool:
    """Whether `line` (from ``splitlines(True)``) has its line end; a final CR may yet become CR LF."""
    return line.splitlines()[0] != line and line[-1:] not in ("\r", b"\r")
