"""Everything one load-generating process holds: recorder, client factory, runner, self-monitoring."""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

from loadgen.client.counters import COUNTERS
from loadgen.client.factory import ClientFactory
from loadgen.controller import TestPlan
from loadgen.errors import UsageError
from loadgen.monitor import ProcessMonitor
from loadgen.options import TestOptions, check_host
from loadgen.runner import Runner
from loadgen.stats.recorder import Recorder, StatsDelta
from loadgen.users import HttpUser, User, UserContext

CPU_WARN_PERCENT = 90.0
CPU_WARN_SECONDS = 5


class Environment:
    """One process's load generation, driven by a controller (local) or a master (worker)."""

    def __init__(self, user_classes: Mapping[str, type[User]], options: TestOptions, open_model: bool = False,
                 worker_id: str = "local") -> None:
        _check_hosts(user_classes, options.host)
        self.options = options
        self.worker_id = worker_id
        self.recorder = Recorder(open_model=open_model, counters=COUNTERS)
        try:
            settings = options.client_settings()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.client_factory = ClientFactory(settings, self.recorder)
        self.context = UserContext(self.recorder, self.client_factory, options.host)
        self.runner = Runner(user_classes, self.context, options.stop_timeout)
        self.monitor = ProcessMonitor()
        self._hot_seconds = 0
        self._max_users: int | None = None
        self._pre_allocate = 0
        self._rss_stopped = False

    def preflight(self, plan: TestPlan) -> list[tuple[str, str, str]]:
        """Raise the open-files limit; warnings ``(kind, message, key)`` when the plan cannot fit in it."""
        warnings: list[tuple[str, str, str]] = []
        self._max_users = plan.max_users
        self._pre_allocate = plan.pre_allocate
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass
        planned = plan.max_users if plan.open_model else plan.users
        if planned + 64 > soft:
            warnings.append((
                "limits",
                f"{planned} users need about {planned} sockets but this process may open only {soft} files: "
                f"raise the limit (ulimit -n / LimitNOFILE) or spread users over more worker processes",
                f"nofile:{self.worker_id}",
            ))
        return warnings

    def set_rate(self, rate: float) -> None:
        self.runner.set_rate(rate, self._max_users or 1000, self._pre_allocate)

    def flush(self) -> StatsDelta:
        cpu, rss = self.monitor.sample()
        delta = self.recorder.flush()
        delta.cpu_percent = cpu
        delta.rss_mb = rss
        return delta

    def check(self, label: str = "this process") -> list[tuple[str, str, str]]:
        """Self-monitoring warnings ``(kind, message, key)``: CPU saturation and memory ceiling."""
        warnings: list[tuple[str, str, str]] = []
        if self.monitor.cpu_percent > CPU_WARN_PERCENT:
            self._hot_seconds += 1
            if self._hot_seconds == CPU_WARN_SECONDS:
                warnings.append((
                    "cpu",
                    f"{label} has used over {CPU_WARN_PERCENT:.0f}% CPU for {CPU_WARN_SECONDS} s: the numbers "
                    "may now measure the generator, not the target; add worker processes (--processes auto)",
                    f"cpu:{self.worker_id}",
                ))
        else:
            self._hot_seconds = 0
        max_rss = self.options.max_rss
        if max_rss and self.monitor.rss_mb > max_rss and not self._rss_stopped:
            self._rss_stopped = True
            self.runner.spawning_paused = True
            warnings.append((
                "memory",
                f"{label} uses {self.monitor.rss_mb:.0f} MB, above --max-rss {max_rss:.0f} MB: spawning stopped",
                f"memory:{self.worker_id}",
            ))
        return warnings

    def stop(self, timeout: float) -> None:
        self.runner.stop(timeout)

    def close(self) -> None:
        self.client_factory.close_all()


def _check_hosts(user_classes: Mapping[str, Any], host: str | None) -> None:
    if host:
        check_host(host)
        return
    for name, cls in user_classes.items():
        if issubclass(cls, HttpUser):
            if not cls.host:
                raise UsageError(f"{name} has no host: pass -H/--host http://HOST:PORT or set `host` on the class")
            check_host(cls.host)
