"""Process-local state of the target: request/connection counters and the optional access log."""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

MAX_PATHS = 1000  # distinct paths tracked in ``by_path``; the rest are summed under OTHER
OTHER = "(other)"


class Counters:
    """Counters served by ``GET /__stats``; admin requests are not counted.

    ``connections``/``tls_*`` count accepted connections and successful handshakes (``tls_handshakes``
    includes resumed ones); a connection whose first request is an admin request is not counted.
    ``in_flight`` and ``open_connections`` are live gauges and survive ``reset()``.
    """

    __slots__ = ("requests", "by_path", "connections", "tls_handshakes", "tls_resumed", "tls_failed",
                 "in_flight", "open_connections")

    def __init__(self) -> None:
        self.in_flight = 0
        self.open_connections = 0
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_path: dict[bytes, int] = {}
        self.connections = 0
        self.tls_handshakes = 0
        self.tls_resumed = 0
        self.tls_failed = 0

    def count_request(self, path: bytes) -> None:
        self.requests += 1
        by_path = self.by_path
        if path in by_path:
            by_path[path] += 1
        elif len(by_path) < MAX_PATHS:
            by_path[path] = 1
        else:
            key = OTHER.encode()
            by_path[key] = by_path.get(key, 0) + 1

    def uncount_connection(self, tls: bool, resumed: bool) -> None:
        """Take back a connection (and its handshake) that turned out to be an admin connection."""
        self.connections = max(0, self.connections - 1)
        if tls:
            self.tls_handshakes = max(0, self.tls_handshakes - 1)
        if resumed:
            self.tls_resumed = max(0, self.tls_resumed - 1)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": {k.decode("latin-1"): v for k, v in self.by_path.items()},
            "connections": self.connections,
            "tls_handshakes": self.tls_handshakes,
            "tls_resumed": self.tls_resumed,
            "tls_failed": self.tls_failed,
            "in_flight": self.in_flight,
            "open_connections": self.open_connections,
            "pid": os.getpid(),
        }


class AccessLog:
    """One line per counted request: ``method target status session_reused connection request_number time``.

    ``session_reused`` is ``r`` (resumed TLS), ``.`` (full TLS handshake) or ``-`` (plain HTTP), as in nginx;
    ``status`` is ``-`` for a request that was never answered (``/stall``).
    """

    def __init__(self, path: str) -> None:
        self._file: TextIO = open(path, "a", buffering=1, encoding="latin-1")

    def write(self, method: bytes, target: bytes, status: int, reused: str, conn_id: int, number: int) -> None:
        status_text = str(status) if status else "-"
        self._file.write(f"{method.decode('latin-1')} {target.decode('latin-1')} {status_text} "
                         f"{reused} {conn_id} {number} {time.time():.3f}\n")

    def close(self) -> None:
        self._file.close()


COUNTERS = Counters()
