"""What the client needs from the layers it serves, as protocols (no imports of theirs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .settings import ClientSettings
    from .urls import Origin


class RequestSink(Protocol):
    """Where every finished request goes (the stats recorder)."""

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None: ...

    def record_interrupted(self, method: str, name: str) -> None:
        """A request cut off before it finished (a kill at a forced stop, a ``gevent.Timeout`` from outside)."""


class QueueDelay(Protocol):
    """A user's open-model queueing delay, added to the first request of its iteration."""

    queued_us: int

    def take_queued_us(self) -> int: ...


class SessionFactory(Protocol):
    """What a session takes from the factory that made it (shared settings, caches, the sink)."""

    @property
    def settings(self) -> ClientSettings: ...

    @property
    def recorder(self) -> RequestSink: ...

    def base_origin(self, base_url: str) -> tuple[Origin, str]: ...

    def shared_heads(self, origin_key: Any, keep_alive: bool) -> dict[Any, bytes]: ...
