"""``rest()`` and ``rest_()`` on HTTP users (Locust's JSON helpers): JSON headers by default, the body parsed
into ``response.js``, and any exception in the with-block the response's failure rather than the task's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

JSON = "application/json"


class RestMixin:
    """For classes with an HTTP ``client``."""

    client: Any

    @contextmanager
    def rest(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Iterator[Any]:
        sent = dict(headers) if headers else {}
        lower = {key.lower() for key in sent}
        if "content-type" not in lower:
            sent["Content-Type"] = JSON
        if "accept" not in lower:
            sent["Accept"] = JSON
        with self.client.request(method, url, catch_response=True, headers=sent, **kwargs) as response:
            response.js = None
            if response.status_code == 0:
                response.failure(response.error or "no response")
            elif response.content:
                try:
                    response.js = response.json()
                except ValueError as exc:
                    response.failure(f"not JSON ({exc}): {response.text[:200]!r}, status {response.status_code}")
            try:
                yield response
            except AssertionError as exc:
                response.failure(str(exc.args[0]) if exc.args else "assertion failed")
            except Exception as exc:  # noqa: BLE001 - Locust's rest(): the block's failure is the response's
                response.failure(f"{type(exc).__name__}: {exc}")

    @contextmanager
    def rest_(self, method: str, url: str, name: str | None = None, **kwargs: Any) -> Iterator[Any]:
        """``rest()`` with a ``_=<milliseconds>`` cache-breaking parameter, named without it."""
        separator = "&" if "?" in url else "?"
        with self.rest(method, f"{url}{separator}_={int(time.time() * 1000)}",
                       name=name if name is not None else f"{url}{separator}_=...", **kwargs) as response:
            yield response
