"""Whether an idle keep-alive socket is still usable: one zero-timeout poll, never a read."""

from __future__ import annotations

import select
from typing import Any

from gevent.monkey import get_original

# register, poll(0), unregister: never yields. The OS's poll even when gevent has patched `select`
# (gevent's poll(0) waits on the hub and reports events of its own)
_POLL = get_original("select", "poll")()
_READABLE = select.POLLIN | select.POLLPRI


def is_dropped(sock: Any) -> bool:
    """Whether an idle socket can no longer carry a request: readable while nobody asked for anything
    (the server's FIN or RST, an unsolicited ``408``, or any other byte), TLS bytes already buffered,
    or closed."""
    try:
        if sock.pending():  # TLS bytes already decrypted
            return True
    except AttributeError:  # a plain socket
        pass
    except (OSError, ValueError):
        return True
    try:
        fd = sock.fileno()
        if fd < 0:
            return True
        _POLL.register(fd, _READABLE)
        try:
            return bool(_POLL.poll(0))
        finally:
            _POLL.unregister(fd)
    except (OSError, ValueError):
        return True
