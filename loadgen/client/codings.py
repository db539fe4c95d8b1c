"""Content codings: what the client accepts (``Accept-Encoding``) and how bodies are decoded.

Like requests, the client asks for ``gzip, deflate``, plus ``br`` when a Brotli module is installed and
``zstd`` when zstandard is, so a server compresses for loadgen exactly as it would for requests.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from .errors import ContentDecodingError


def _gunzip(body: bytes) -> bytes:
    return zlib.decompress(body, 16 + zlib.MAX_WBITS)


def _inflate(body: bytes) -> bytes:
    try:
        return zlib.decompress(body)
    except zlib.error:  # raw deflate without the zlib wrapper (some servers send it)
        return zlib.decompress(body, -zlib.MAX_WBITS)


DECODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": _gunzip, "x-gzip": _gunzip, "deflate": _inflate}

def _optional(*names: str) -> Any:
    """The first of these modules that imports, else None."""
    import importlib

    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_brotli = _optional("brotli", "brotlicffi")
if _brotli is not None:
    DECODERS["br"] = _brotli.decompress

_zstd = _optional("zstandard")
if _zstd is not None:

    def _unzstd(body: bytes) -> bytes:
        return _zstd.ZstdDecompressor().decompressobj().decompress(body)

    DECODERS["zstd"] = _unzstd

ACCEPT_ENCODING = ", ".join(c for c in ("gzip", "deflate", "br", "zstd") if c in DECODERS)
"""The ``Accept-Encoding`` sent by default (a request's or session's header overrides it)."""


def decode(body: bytes, codings: str) -> bytes:
    """`body` with the codings of a ``Content-Encoding`` value undone (last applied first).

    ``identity`` and unknown codings are left as they are, as requests does. Raises
    `ContentDecodingError` for a body that does not decode."""
    for coding in reversed([c.strip().lower() for c in codings.split(",")]):
        decoder = DECODERS.get(coding)
        if decoder is None:
            continue
        try:
            body = decoder(body)
        except Exception as exc:  # zlib.error, brotli.error, zstd errors: all mean a corrupt body
            raise ContentDecodingError(f"cannot decode {coding} body: {exc}") from None
    return body


class _Inflate:
    """Streaming deflate: the zlib wrapper, or raw deflate when the first bytes say so."""

    __slots__ = ("_obj", "_started")

    def __init__(self) -> None:
        self._obj = zlib.decompressobj()
        self._started = False

    def __call__(self, data: bytes) -> bytes:
        if not self._started and data:
            self._started = True
            try:
                return self._obj.decompress(data)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._obj.decompress(data)


def _step_decoder(coding: str) -> Callable[[bytes], bytes] | None:
    """A function decoding one coding piece by piece, or None for identity and unknown codings."""
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if coding == "deflate":
        return _Inflate()
    if coding == "br" and _brotli is not None:
        obj = _brotli.Decompressor()
        return getattr(obj, "process", None) or obj.decompress  # brotli's, brotlicffi's
    if coding == "zstd" and _zstd is not None:
        return _zstd.ZstdDecompressor().decompressobj().decompress
    return None


def stream_decoder(codings: str) -> Callable[[bytes], bytes] | None:
    """A function decoding a body with the codings of a ``Content-Encoding`` value as it arrives, piece
    by piece (for ``stream=True``); None if there is nothing to undo. It raises `ContentDecodingError`."""
    steps = [d for d in (_step_decoder(c.strip().lower()) for c in reversed(codings.split(","))) if d]
    if not steps:
        return None

    def decode_piece(data: bytes) -> bytes:
        try:
            for step in steps:
                data = step(data)
        except Exception as exc:  # zlib.error, brotli.error, zstd errors: all mean a corrupt body
            raise ContentDecodingError(f"cannot decode {codings} body: {exc}") from None
        return data

    return decode_piece
