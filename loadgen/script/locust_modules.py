"""``import locust`` inside a locustfile, answered by loadgen: the names locustfiles import, module by module.

While a script loads, a finder placed first on ``sys.meta_path`` answers ``locust`` and its submodules with
modules built from ``MODULES`` (each name is resolved on first use, from loadgen's own modules). Locust
itself, installed or not, is never imported: its ``import locust`` patches the whole process with gevent
and starts its own runners. Once built, the modules stay in ``sys.modules``, so a task that imports
``locust.exception`` later gets the same classes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

U, T, M, SQ, E, P, C = ("loadgen.script.users", "loadgen.script.tasksets", "loadgen.script.markov",
                        "loadgen.script.locust_compat", "loadgen.script.events", "loadgen.script.pacing",
                        "loadgen.client.errors")
WAIT_TIMES = {name: P for name in ("between", "constant", "constant_pacing", "constant_throughput", "poisson")}
EXCEPTIONS = {"StopUser": U, "RescheduleTask": U, "RescheduleTaskImmediately": U, "InterruptTaskSet": T,
              "CatchResponseError": C, "ResponseError": C, "LocustError": SQ, "StopTest": U,
              "MissingWaitTimeError": SQ, "RPCError": SQ, "RunnerAlreadyExistsError": SQ}
USERS = {"User": U, "HttpUser": U, "task": U, "tag": "loadgen.script.tags", "TaskSet": T,
         "SequentialTaskSet": T, "MarkovTaskSet": M, "transition": M, "transitions": M}
RUNNER_STATES = {name: SQ for name in ("STATE_INIT", "STATE_SPAWNING", "STATE_RUNNING", "STATE_CLEANUP",
                                       "STATE_STOPPING", "STATE_STOPPED", "STATE_MISSING")}
RUNNERS = {"Runner": SQ, "LocalRunner": SQ, "MasterRunner": SQ, "WorkerRunner": SQ, **RUNNER_STATES}

# every module a locustfile imports from, and where each of its names comes from in loadgen
MODULES: dict[str, dict[str, str]] = {
    "locust": {**USERS, **WAIT_TIMES, "FastHttpUser": "loadgen.script.fasthttp", "events": E,
               "LoadTestShape": SQ, "run_single_user": SQ, "__version__": SQ, "Events": E, "EventHook": E,
               "wait_time": "=locust.user.wait_time", "runners": "=locust.runners", "env": "=locust.env",
               "exception": "=locust.exception", "stats": "=locust.stats", "event": "=locust.event"},
    "locust.exception": EXCEPTIONS,
    "locust.user": {**USERS, **WAIT_TIMES, "wait_time": "=locust.user.wait_time"},
    "locust.user.users": {"User": U, "HttpUser": U},
    "locust.user.task": {"TaskSet": T, "task": U, "tag": "loadgen.script.tags", "LOCUST_STATE_RUNNING": SQ,
                         "LOCUST_STATE_WAITING": SQ, "LOCUST_STATE_STOPPING": SQ},
    "locust.user.sequential_taskset": {"SequentialTaskSet": T},
    "locust.user.markov_taskset": {"MarkovTaskSet": M, "transition": M, "transitions": M},
    "locust.user.wait_time": WAIT_TIMES,
    "locust.wait_time": WAIT_TIMES,
    "locust.contrib": {"fasthttp": "=locust.contrib.fasthttp"},
    "locust.contrib.fasthttp": {"FastHttpUser": "loadgen.script.fasthttp", "ResponseContextManager": SQ,
                                "FastHttpSession": SQ},
    "locust.clients": {"HttpSession": SQ, "ResponseContextManager": SQ},
    "locust.event": {"Events": E, "EventHook": E},
    "locust.env": {"Environment": "loadgen.script.locust_env:LocustEnvironment"},
    "locust.runners": RUNNERS,
    "locust.shape": {"LoadTestShape": SQ},
    "locust.debug": {"run_single_user": SQ},
    "locust.stats": {"RequestStats": SQ, "StatsEntry": SQ, "stats_printer": SQ, "stats_history": SQ,
                     "StatsCSVFileWriter": SQ, "PERCENTILES_TO_REPORT": SQ},
    "locust.log": {"setup_logging": SQ, "greenlet_exception_logger": SQ},
    "locust.argument_parser": {"LocustArgumentParser": "loadgen.script.options", "get_parser": SQ},
    "locust.util": {"timespan": "=locust.util.timespan"},
    "locust.util.timespan": {"parse_timespan": SQ},
    "locust.main": {},
}

OLD_NAMES = {"Locust": "User", "HttpLocust": "HttpUser", "TaskSequence": "SequentialTaskSet",
             "seq_task": "@task on a SequentialTaskSet"}


class LocustModule(ModuleType):
    """A module whose names resolve from loadgen on first use."""

    def __getattr__(self, name: str) -> Any:
        source = MODULES.get(self.__name__, {}).get(name)
        if source is None:
            if name in OLD_NAMES:
                raise AttributeError(f"{name} was renamed {OLD_NAMES[name]} in Locust 1.0: use {OLD_NAMES[name]}")
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} "
                                 "(docs/from-locust.md lists what loadgen provides)")
        if source.startswith("="):
            value: Any = importlib.import_module(source[1:])
        else:
            module_name, _, attribute = source.partition(":")
            value = getattr(importlib.import_module(module_name), attribute or name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(MODULES.get(self.__name__, {}))


class LocustFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``locust`` and ``locust.*`` (the modules in ``MODULES``; any other submodule is an error)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "locust" and not fullname.startswith("locust."):
            return None
        if fullname not in MODULES:
            raise ModuleNotFoundError(f"loadgen does not provide {fullname} (docs/from-locust.md lists the "
                                      "Locust modules it maps)", name=fullname)
        is_package = any(name.startswith(fullname + ".") for name in MODULES)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = LocustModule(spec.name)
        module.__file__ = f"<loadgen's {spec.name}>"
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__all__ = [name for name, source in MODULES[module.__name__].items()  # type: ignore[attr-defined]
                          if not source.startswith("=")]


FINDER = LocustFinder()


@contextmanager
def locust_names() -> Iterator[None]:
    """While a script loads: ``import locust`` is loadgen's (a real Locust already imported is set aside)."""
    stale = [name for name, module in sys.modules.items()
             if (name == "locust" or name.startswith("locust.")) and not isinstance(module, LocustModule)]
    for name in stale:
        del sys.modules[name]
    sys.meta_path.insert(0, FINDER)
    try:
        yield
        if "locust" in sys.modules:  # every module now, so that a task importing one later gets loadgen's
            for name in MODULES:
                importlib.import_module(name)
    finally:
        if FINDER in sys.meta_path:
            sys.meta_path.remove(FINDER)


LOCUST_IMPORT = re.compile(rb"^[ \t]*(?:from|import)[ \t]+locust\b", re.MULTILINE)


def imports_locust(source: bytes) -> bool:
    """Whether a script's source imports Locust's names (a locustfile)."""
    return LOCUST_IMPORT.search(source) is not None


LOCUST_NOTE = ("loadgen: running a Locust script (docs/from-locust.md): constant_pacing/constant_throughput keep a "
               "fixed schedule and count missed starts, connections are kept alive and TLS sessions resumed, "
               "percentiles come from histograms within 1 %, and a request that may have arrived is never resent")
