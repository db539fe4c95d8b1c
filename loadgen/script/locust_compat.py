"""The rest of Locust's names that locustfiles import: ``LoadTestShape``, runner states and classes, the
exceptions loadgen has no use for, and library helpers that have no meaning under loadgen (they raise with
what to do instead)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from loadgen.client.response import Response as ResponseContextManager  # noqa: F401 - Locust's name
from loadgen.client.session import HttpSession  # noqa: F401 - Locust's name
from loadgen.model.durations import parse_duration
from loadgen.script.locust_env import (  # noqa: F401 - Locust's names
    LocalRunner,
    MasterRunner,
    RunnerView,
    StatsEntryView,
    StatsView,
    WorkerRunner,
)
from loadgen.script.shapes import LoadShape
from loadgen.script.users import StopTest  # noqa: F401 - Locust's name, from locust.exception

__version__ = "2.47.0"  # the Locust API this mirrors

FastHttpSession = HttpSession
Runner = RunnerView
RequestStats = StatsView
StatsEntry = StatsEntryView
PERCENTILES_TO_REPORT = [0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]

STATE_INIT, STATE_SPAWNING, STATE_RUNNING, STATE_CLEANUP = "ready", "spawning", "running", "cleanup"
STATE_STOPPING, STATE_STOPPED, STATE_MISSING = "stopping", "stopped", "missing"
LOCUST_STATE_RUNNING, LOCUST_STATE_WAITING, LOCUST_STATE_STOPPING = "running", "waiting", "stopping"


class LocustError(Exception):
    pass


class MissingWaitTimeError(LocustError):
    pass


class RPCError(Exception):
    pass


class RunnerAlreadyExistsError(Exception):
    pass


class LoadTestShape(LoadShape):
    """Locust's shape: ``tick()`` returns ``(users, spawn_rate)``, ``(users, spawn_rate, user_classes)`` or
    ``None`` (the test ends). ``get_run_time()`` counts from the start or the last ``reset_time()``."""

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = False
    runner: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def __init__(self) -> None:
        super().__init__()
        self._offset = 0.0

    def reset_time(self) -> None:
        self._offset = self.elapsed

    def get_run_time(self) -> float:
        return self.elapsed - self._offset

    def get_current_user_count(self) -> int:
        return self.runner.user_count if self.runner is not None else 0


SINGLE_USER: list[Callable[..., None]] = []  # the engine's runner of one user, registered when it is imported


def run_single_user(user_class: type, include_length: bool = False, include_time: bool = False,
                    include_context: bool = False, include_payload: bool = False,
                    loglevel: str | None = "WARNING") -> None:
    """One user of ``user_class`` in this process, each request printed: step through it in a debugger
    (``python -m loadgen.debug locustfile.py``; ``from loadgen import run_single_user`` works anywhere)."""
    if not SINGLE_USER:
        raise RuntimeError("run_single_user needs loadgen's engine: run the script with "
                           "`python -m loadgen.debug locustfile.py`")
    SINGLE_USER[0](user_class, include_length=include_length, include_time=include_time, loglevel=loglevel)


def setup_logging(loglevel: str, logfile: str | None = None) -> None:
    logging.basicConfig(level=getattr(logging, str(loglevel).upper(), logging.INFO), filename=logfile,
                        format="[%(asctime)s] %(levelname)s/%(name)s: %(message)s")


def greenlet_exception_logger(logger: Any, level: int = logging.CRITICAL) -> Callable[[Any], None]:
    def log(greenlet: Any) -> None:
        logger.log(level, "unhandled exception in greenlet: %s", greenlet.exception)

    return log


def parse_timespan(text: str) -> int:
    """Locust's ``parse_timespan("1h30m")``: whole seconds."""
    return int(parse_duration(text))


def _not_here(name: str, instead: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"locust.{name} has no meaning under loadgen: {instead}")

    refuse.__name__ = name
    return refuse


stats_printer = _not_here("stats.stats_printer", "loadgen prints live stats itself (-q to silence)")
stats_history = _not_here("stats.stats_history", "the report's timeline has every second (--json PATH)")
StatsCSVFileWriter = _not_here("stats.StatsCSVFileWriter", "use --csv PREFIX")
get_parser = _not_here("argument_parser.get_parser", "add options with events.init_command_line_parser")

