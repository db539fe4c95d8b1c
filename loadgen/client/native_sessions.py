"""TLS session resumption without CPython's session copy.

CPython copies a TLS session each time it is read (``sock.session``) or offered (``wrap_socket(session=)``):
it encodes the session and decodes it again, certificate and all, which costs ~400 µs a connection under
OpenSSL 3 (its certificate decoding is slow), as much as the rest of a resumed connection. OpenSSL's own
``SSL_SESSION_dup`` copies by reference (~1 µs). Here a session is kept as a private copy made with it,
and each new connection is offered a fresh copy of that (the copy a connection uses may be marked
unresumable when the connection closes without a TLS shutdown, so the kept one never is).

This reaches the ``SSL *`` inside CPython's ``_ssl._SSLSocket`` (its second pointer field, stable since
Python 3.7), through ``ctypes`` and the libssl that ``_ssl`` itself is linked with. A self-test on first
use checks the layout (the ``SSL *`` must belong to the context's ``SSL_CTX *``); anything unexpected, or
``LOADGEN_NATIVE_TLS_SESSIONS=0``, falls back to CPython's sessions.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import sysconfig
from typing import Any

_SOCKET_SSL_OFFSET = 3 * ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD (2 words), then Socket, then ssl
_CONTEXT_CTX_OFFSET = 2 * ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD, then SSL_CTX *ctx

_lib: Any = None
_SSL_SOCKET: Any = None  # _ssl._SSLSocket, once the self-test passed
_state: bool | None = None  # None: not tried yet


def _pointer_at(obj: object, offset: int) -> int | None:
    return ctypes.c_void_p.from_address(id(obj) + offset).value


def _bind() -> Any:
    import _ssl

    lib = ctypes.PyDLL(_ssl.__file__)  # keeps the GIL: each call is a microsecond, and nothing else may run
    pointer, integer = ctypes.c_void_p, ctypes.c_int
    for name, args, result in (
        ("SSL_get_session", [pointer], pointer),
        ("SSL_SESSION_dup", [pointer], pointer),
        ("SSL_SESSION_free", [pointer], None),
        ("SSL_SESSION_has_ticket", [pointer], integer),
        ("SSL_set_session", [pointer, pointer], integer),
        ("SSL_get_SSL_CTX", [pointer], pointer),
        ("SSL_is_server", [pointer], integer),
    ):
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result
    return lib


def available(context: Any) -> bool:
    """Whether native sessions work in this interpreter (tested once, on ``context``)."""
    global _lib, _state, _SSL_SOCKET
    if _state is not None:
        return _state
    _state = False
    if (os.environ.get("LOADGEN_NATIVE_TLS_SESSIONS", "1") == "0" or platform.python_implementation() != "CPython"
            or not (3, 8) <= sys.version_info[:2] <= (3, 14) or sysconfig.get_config_var("Py_GIL_DISABLED")
            or hasattr(sys, "getobjects")):  # free-threaded and trace-refs builds have a longer object header
        return False
    try:
        import _ssl
        import ssl

        lib = _bind()
        probe = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=False)
        socket_type: Any = getattr(_ssl, "_SSLSocket", None)
        if (socket_type is None or type(probe._sslobj) is not socket_type
                or type(context).__basicsize__ < _CONTEXT_CTX_OFFSET + 8
                or socket_type.__basicsize__ < _SOCKET_SSL_OFFSET + 8):
            return False
        handle = _pointer_at(probe._sslobj, _SOCKET_SSL_OFFSET)
        ctx = _pointer_at(context, _CONTEXT_CTX_OFFSET)
        if handle and ctx and lib.SSL_get_SSL_CTX(handle) == ctx and lib.SSL_is_server(handle) == 0:
            _lib, _state, _SSL_SOCKET = lib, True, socket_type
    except (OSError, AttributeError, TypeError, ValueError):
        pass
    return _state


class NativeSession:
    """A private copy of an ``SSL_SESSION``, freed with this object."""

    __slots__ = ("pointer",)

    def __init__(self, pointer: int) -> None:
        self.pointer = pointer

    @property
    def has_ticket(self) -> bool:
        return bool(_lib.SSL_SESSION_has_ticket(self.pointer))

    def __del__(self) -> None:
        if _lib is not None and self.pointer:
            _lib.SSL_SESSION_free(self.pointer)
            self.pointer = 0


def enabled() -> bool:
    """Whether `available` found native sessions working (False until a context was tested)."""
    return bool(_state)


def take(sock: Any) -> NativeSession | None:
    """A private copy of the connection's current session (a TLS 1.3 one may still wait for its ticket:
    ``has_ticket``); None once the connection is closed."""
    sslobj = getattr(sock, "_sslobj", None)  # held for the whole call: the SSL * lives as long as it does
    handle = _pointer_at(sslobj, _SOCKET_SSL_OFFSET) if type(sslobj) is _SSL_SOCKET else None
    current = _lib.SSL_get_session(handle) if handle else None
    if not current:
        return None
    copy = _lib.SSL_SESSION_dup(current)
    return NativeSession(copy) if copy else None


def offer(sock: Any, session: NativeSession) -> None:
    """Offer a copy of ``session`` on ``sock``, before its handshake."""
    sslobj = getattr(sock, "_sslobj", None)
    handle = _pointer_at(sslobj, _SOCKET_SSL_OFFSET) if type(sslobj) is _SSL_SOCKET else None
    if not handle:
        return
    copy = _lib.SSL_SESSION_dup(session.pointer)
    if copy:
        _lib.SSL_set_session(handle, copy)  # takes its own reference
        _lib.SSL_SESSION_free(copy)
