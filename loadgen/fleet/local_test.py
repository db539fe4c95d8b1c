"""What a worker needs of the test it runs locally: its own users (``engine.Environment``) or, on a machine
of several processes, its children (``fleet.group.GroupEnvironment``). Both fit these protocols."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from loadgen.engine.placement import Placement
from loadgen.fleet.protocol import Start
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions
from loadgen.stats.recorder import StatsDelta


class LocalRunner(Protocol):
    @property
    def placement(self) -> Placement: ...

    @property
    def user_count(self) -> int: ...

    def set_target(self, counts: Mapping[str, int], spawn_rate: float, handover: float = 0.0) -> None: ...

    def set_rate(self, rate: float, max_users: int, pre_allocate: int = 0) -> None: ...

    def realign(self) -> None: ...

    def suspend(self) -> None: ...

    def resume(self) -> None: ...

    def lease_renewed(self) -> None: ...

    def force_stop(self) -> None: ...


class LocalMonitor(Protocol):
    @property
    def cpu_percent(self) -> float: ...

    @property
    def rss_mb(self) -> float: ...


class LocalRecorder(Protocol):
    def flush(self) -> object: ...


class LocalTest(Protocol):
    @property
    def options(self) -> TestOptions: ...

    @property
    def runner(self) -> LocalRunner: ...

    @property
    def monitor(self) -> LocalMonitor: ...

    @property
    def recorder(self) -> LocalRecorder: ...

    def flush(self) -> StatsDelta: ...

    def check(self, label: str = ...) -> list[Notice]: ...

    def stop(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class LocalPreparation(Protocol):
    def environment(self, message: Start, warn: Callable[[str, str, str], None]) -> LocalTest: ...

    def clean(self) -> None: ...
