"""`SessionHeaders`: a session's default request headers, reporting every change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class SessionHeaders(dict[str, str]):
    """Default headers of a session; any change runs `on_change` (the session drops its cached heads)."""

    __slots__ = ("_on_change",)

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def _changed(self) -> None:
        self._on_change()

    def __setitem__(self, k: str, v: str) -> None:
        super().__setitem__(k, v)
        self._changed()

    def __delitem__(self, k: str) -> None:
        super().__delitem__(k)
        self._changed()

    def update(self, *a: Any, **kw: Any) -> None:
        super().update(*a, **kw)
        self._changed()

    def pop(self, *a: Any) -> Any:
        self._changed()
        return super().pop(*a)

    def clear(self) -> None:
        super().clear()
        self._changed()

    def setdefault(self, k: str, v: Any = None) -> Any:
        self._changed()
        return super().setdefault(k, v)
