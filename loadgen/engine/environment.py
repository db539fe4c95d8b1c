"""Everything one load-generating process holds: recorder, client factory, runner, self-monitoring."""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

from loadgen.client.counters import COUNTERS
from loadgen.client.factory import ClientFactory
from loadgen.client.session import HttpSession
from loadgen.client.settings import ClientSettings
from loadgen.engine.event_recorder import EventRecorder, ObservedSession
from loadgen.engine.loop_guard import LoopGuard
from loadgen.engine.monitor import BlockingMonitor, ProcessMonitor
from loadgen.engine.runner import Runner
from loadgen.engine.stalls import StallWatch
from loadgen.engine.worker_controls import WorkerControls, WorkerStats
from loadgen.model.errors import UsageError
from loadgen.model.health import CpuWatch, cpu_notice
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions, check_host, parse_pool
from loadgen.model.plan import TestPlan
from loadgen.script.events import events
from loadgen.script.loader import Script
from loadgen.script.locust_env import LocustEnvironment, RunnerControls
from loadgen.script.options import parsed_options
from loadgen.script.process_hooks import ProcessHooks
from loadgen.script.users import HttpUser, User, UserContext
from loadgen.stats.recorder import Recorder, StatsDelta

PORT_RANGE_PATH = "/proc/sys/net/ipv4/ip_local_port_range"



class Environment:
    """One process's load generation, driven by a controller (local) or a master (worker)."""

    def __init__(self, user_classes: Mapping[str, type[User]], options: TestOptions, open_model: bool = False,
                 worker_id: str = "local", watch_cpu: bool = True, script: Script | None = None,
                 controls: RunnerControls | None = None) -> None:
        _check_hosts(user_classes, options.host)
        self.options = options
        self.watch_cpu = watch_cpu  # a worker's CPU is watched by its master, from its heartbeats
        self.worker_id = worker_id
        recorder_class = EventRecorder if uses_events(script) else Recorder
        self.recorder = recorder_class(open_model=open_model, counters=COUNTERS)
        events.request.bind(self.recorder)  # a custom client's events.request.fire(...) is recorded here
        try:
            settings = client_settings(options)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.client_factory = ClientFactory(settings, self.recorder,
                                            ObservedSession if recorder_class is EventRecorder else HttpSession)
        self.locust = locust_environment(options, user_classes, script)
        self.context = UserContext(self.recorder, self.client_factory, options.host, self.locust)
        self.runner = Runner(user_classes, self.context, options.stop_timeout, iterations=options.iterations)
        self.worker_stats = WorkerStats(self.recorder) if controls is None and recorder_class is EventRecorder \
            else None
        self.hooks = ProcessHooks(self.locust, controls or WorkerControls(self.runner, self.worker_stats))
        self.monitor = ProcessMonitor()
        self.watchdog = StallWatch(self.runner.running, options.stall_timeout, worker_id)
        self.blocking: BlockingMonitor | None = None
        self.guard: LoopGuard | None = None  # on gevent's monitor thread while blocking is watched
        self._blocks: dict[str, list[float]] = {}  # call site → [blocks, longest s, total s]
        self._cpu = CpuWatch()
        self._max_users: int | None = None
        self._pre_allocate = 0
        self._rss_stopped = False

    def preflight(self, plan: TestPlan) -> list[Notice]:
        """Raise the open-files limit; notices when the plan cannot fit in it or in the ephemeral ports."""
        warnings: list[Notice] = []
        self._max_users = plan.max_users
        self._pre_allocate = plan.pre_allocate
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass
        planned = plan.planned_users()
        sockets = self._planned_connections(planned)
        if sockets + 64 > soft:
            warnings.append(Notice(
                "limits",
                f"{planned} users need about {sockets} sockets but this process may open only {soft} files: "
                f"raise the limit (ulimit -n / LimitNOFILE) or spread users over more worker processes",
                f"nofile:{self.worker_id}",
            ))
        warnings.extend(self._port_range_warnings(planned))
        warnings.extend(_patching_warnings(self.worker_id))
        self.blocking = BlockingMonitor.enable(getattr(self.options, "max_blocking", 0.5) or 0.0)
        if self.blocking is not None:
            self.guard = LoopGuard.of(self.blocking)
        return warnings

    def _planned_connections(self, planned: int) -> int:
        """Connections ``planned`` users hold: one each, or at most N per origin with ``--pool shared:N``."""
        pool, size = parse_pool(self.options.pool) if self.options.pool else ("user", 0)
        return min(planned, size) if pool == "shared" else planned

    def _port_range_warnings(self, planned: int) -> list[Notice]:
        """Each connection to one target address needs its own local port from the ephemeral range."""
        try:
            with open(PORT_RANGE_PATH) as handle:
                low, high = (int(part) for part in handle.read().split()[:2])
        except (OSError, ValueError):
            return []
        ports = high - low + 1
        connections = self._planned_connections(planned)
        if connections <= ports * 0.8:
            return []
        return [Notice(
            "limits",
            f"about {connections} connections to one target need as many local ports but the ephemeral port "
            f"range {low}-{high} has {ports} (closed connections also hold theirs for about 60 s in TIME_WAIT): "
            f"widen it with sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\", use --pool shared:N, "
            f"or spread users over more machines",
            f"ports:{self.worker_id}",
        )]

    def set_rate(self, rate: float) -> None:
        self.runner.set_rate(rate, self._max_users or 1000, self._pre_allocate)

    def flush(self) -> StatsDelta:
        runner = self.runner
        if not self.hooks.spawned and runner.user_count and runner.user_count >= sum(runner.target.values()):
            self.hooks.spawning_complete(runner.user_count)
        cpu, rss = self.monitor.sample()
        delta = self.recorder.flush()
        self.watchdog.progress(delta.requests)
        delta.cpu_percent = cpu
        delta.rss_mb = rss
        if self.worker_stats is not None:
            self.worker_stats.add(delta)
        return delta

    def check(self, label: str = "this process") -> list[Notice]:
        """Self-monitoring notices: CPU saturation, memory ceiling, stuck users, a blocked event loop
        (docs/robustness.md)."""
        warnings: list[Notice] = self.watchdog.check(label)
        if self.blocking is not None:
            warnings.extend(self._blocking_warnings(label))
        if self.watch_cpu and self._cpu.observe(self.monitor.cpu_percent):
            warnings.append(cpu_notice(label, f"cpu:{self.worker_id}"))
        max_rss = self.options.max_rss
        if max_rss and self.monitor.rss_mb > max_rss and not self._rss_stopped:
            self._rss_stopped = True
            self.runner.spawning_paused = True
            warnings.append(Notice(
                "memory",
                f"{label} uses {self.monitor.rss_mb:.0f} MB, above --max-rss {max_rss:.0f} MB: spawning stopped",
                f"memory:{self.worker_id}",
            ))
        return warnings

    def _blocking_warnings(self, label: str) -> list[Notice]:
        """Every block, one warning per call site with its counts (the warning's text is updated each time)."""
        assert self.blocking is not None
        warnings = []
        for seconds, where in self.blocking.drain():
            place = str(where)
            tally = self._blocks.setdefault(place, [0, 0.0, 0.0])
            tally[0] += 1
            tally[1] = max(tally[1], seconds)
            tally[2] += seconds
            count, longest, total = tally
            on = "" if label == "this process" else f" on {label}"
            times = f"blocked {seconds:.1f} s" if count == 1 else \
                f"blocked {count} times ({total:.1f} s in all, the longest {longest:.1f} s)"
            warnings.append(Notice(
                "blocking",
                f"event loop{on} {times} at {place}: a call that never yields stalls every user; "
                "use a gevent-friendly library or gevent.get_hub().threadpool",
                "blocking:" + place,
            ))
        return warnings

    def stop(self, timeout: float) -> None:
        self.hooks.test_stopping()
        self.runner.stop(timeout)
        self.hooks.test_stop()

    def close(self) -> None:
        self.client_factory.close_all()


def uses_events(script: Script | None) -> bool:
    """Whether this test's script may listen to ``events.request``: it has listeners already, imports Locust's
    names, or names loadgen's events (decided per script: a worker that stays runs other scripts next)."""
    if events.request.listeners:
        return True
    return script is not None and (script.locust or b"events" in script.source)


def locust_environment(options: TestOptions, user_classes: Mapping[str, type[User]],
                       script: Script | None) -> LocustEnvironment:
    """Locust's ``environment`` for this process's users and the script's hooks."""
    values = script.script_options if script is not None else dict(options.extra.get("script_options") or {})
    environment = LocustEnvironment(host=options.host, parsed_options=parsed_options(options.to_dict(), values),
                                    user_classes=list(user_classes.values()),
                                    shape=script.shape if script is not None else None,
                                    locustfile=options.file or "")
    environment.reset_stats = options.reset_stats
    environment.stop_timeout = options.stop_timeout
    return environment


def client_settings(options: TestOptions) -> ClientSettings:
    """The client's settings for a test's options."""
    pool, pool_size = parse_pool(options.pool) if options.pool else ("user", 10)
    return ClientSettings(
        insecure=options.insecure, ca_bundle=options.ca_bundle, client_cert=options.client_cert,
        client_key=options.client_key, connect_timeout=options.connect_timeout, read_timeout=options.read_timeout,
        tls_resume=options.tls_resume, tls_max=options.tls_max, dns_ttl=options.dns_ttl, dns_select=options.dns_select,
        dns_ipv6=options.dns_ipv6, dns_server=options.dns_server, pool=pool, pool_size=pool_size,
    )


def _patching_warnings(worker_id: str) -> list[Notice]:
    """Modules imported before gevent patched (recorded by loadgen.app.entry), or no patching at all."""
    from gevent import monkey

    from loadgen.engine import patching

    warnings = []
    if not monkey.is_module_patched("socket"):
        warnings.append(Notice(
            "patching",
            "gevent has not patched socket in this process: users block each other; call "
            "gevent.monkey.patch_all() before importing anything else (the loadgen command does it)",
            "unpatched",
        ))
    if patching.EARLY_IMPORTS:
        names = ", ".join(patching.EARLY_IMPORTS)
        warnings.append(Notice(
            "patching",
            f"imported before gevent patched: {names}; their calls may block every user (e.g. via "
            "sitecustomize, PYTHONSTARTUP or an embedding application): import them after loadgen starts",
            "early:" + names,
        ))
    for text in patching.PATCH_WARNINGS:
        warnings.append(Notice("patching", f"gevent: {text}", "gevent:" + text[:80]))
    return warnings


def _check_hosts(user_classes: Mapping[str, Any], host: str | None) -> None:
    if host:
        check_host(host)
        return
    for name, cls in user_classes.items():
        if issubclass(cls, HttpUser):
            if not cls.host:
                raise UsageError(f"{name} has no host: pass -H/--host http://HOST:PORT or set `host` on the class")
            check_host(cls.host)
