"""gunicorn config for ``echo_wsgi:app``: only a ``pre_request`` hook, every other setting at its default.

The hook hands the parsed request's target and header list (order and repeats as received) to
``echo_wsgi``, which a WSGI environ cannot carry. It replaces gunicorn's default ``pre_request``, which only
logs the request line at debug level.
"""

from __future__ import annotations

import sys
from typing import Any


def pre_request(worker: Any, req: Any) -> None:
    echo = sys.modules.get("echo_wsgi")  # loaded by the worker before it serves anything
    if echo is not None:
        echo.remember_request(req.uri, list(req.headers))
