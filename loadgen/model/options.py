"""Every option that shapes a test, as one plain record (CLI → local run, or master → workers)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from loadgen.model.addresses import parse_host_port
from loadgen.model.errors import UsageError
from loadgen.model.plan import TestPlan
from loadgen.model.stages import parse_stages
from loadgen.model.thresholds import parse_threshold

_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass
class TestOptions:
    __test__ = False  # not a pytest test class

    file: str | None = None
    host: str | None = None
    users: int = 1
    spawn_rate: float = 1.0
    run_time: float | None = None
    user_classes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # only tasks with one of these tags (``@tag``)
    exclude_tags: tuple[str, ...] = ()  # no task with one of these
    stop_timeout: float = 10.0
    iterations: int | None = None  # -i: stop after this many tasks in all (closed model)
    reset_stats: bool = False  # --reset-stats: the stats start again once the users are all running
    script_args: tuple[str, ...] = ()  # the words for the script's own options, and class names
    exit_code_on_error: int = 1
    allow_empty: bool = False
    # load models
    arrival_rate: float | None = None
    max_users: int | None = None
    pre_allocate: int = 0
    stages: str | None = None
    thresholds: tuple[str, ...] = ()
    abort_on_threshold: bool = False
    # client
    insecure: bool = False
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    connect_timeout: float | None = 10.0
    read_timeout: float | None = 60.0
    tls_resume: bool = True
    tls_max: str | None = None
    pool: str | None = None
    dns_ttl: float = 300.0
    dns_select: str = "round-robin"
    dns_ipv6: bool = False
    dns_server: str | None = None
    # robustness
    stall_timeout: float = 30.0
    max_rss: float | None = None
    max_blocking: float = 0.5
    # outputs
    json_path: str | None = None
    csv_prefix: str | None = None
    html_path: str | None = None
    junit_path: str | None = None
    stream: str | None = None
    web: str | None = None
    web_token: str | None = field(default=None, repr=False, metadata={"secret": True})
    web_private: bool = False
    web_cert: str | None = None
    web_key: str | None = None
    prometheus: str | None = None
    quiet: bool = False
    csv_full_history: bool = False  # --csv-full-history: PREFIX_stats_history.csv, every endpoint every second
    logfile: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every option but the secrets (sent to workers, written to reports: the web token is neither)."""
        data = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if f.metadata.get("secret"):
                del data[f.name]
        data["user_classes"] = list(self.user_classes)
        data["thresholds"] = list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["user_classes"] = tuple(values.get("user_classes", ()))
        values["thresholds"] = tuple(values.get("thresholds", ()))
        for key in ("tags", "exclude_tags", "script_args"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)

    # ---- validation and derived records -----------------------------------------------------------------
    def validate(self) -> None:
        """Raise UsageError (one line, with the fix) for any bad value."""
        if self.host:
            check_host(self.host)
        if self.users < 0:
            raise UsageError(f"-u/--users {self.users} is negative: give a whole number >= 0")
        if self.spawn_rate <= 0:
            raise UsageError(f"-r/--spawn-rate {self.spawn_rate} must be above zero, e.g. -r 10")
        if self.run_time is not None and self.run_time <= 0:
            raise UsageError("-t/--run-time must be above zero, e.g. -t 30s")
        if self.arrival_rate is not None and self.arrival_rate < 0:
            raise UsageError("--arrival-rate must be >= 0, e.g. --arrival-rate 100")
        if self.max_users is not None and self.max_users < 1:
            raise UsageError("--max-users must be at least 1")
        if self.pool:
            parse_pool(self.pool)
        if self.dns_select not in ("first", "random", "round-robin"):
            raise UsageError(f"--dns-select {self.dns_select!r}: use first, random or round-robin")
        if self.client_key and not self.client_cert:
            raise UsageError("--client-key needs --client-cert")
        if self.tls_max not in (None, "1.2", "1.3"):
            raise UsageError(f"--tls-max {self.tls_max!r}: use 1.2 or 1.3")
        if self.iterations is not None and self.iterations < 1:
            raise UsageError(f"-i/--iterations {self.iterations}: give a whole number >= 1")
        if self.iterations is not None and self.arrival_rate is not None:
            raise UsageError("-i/--iterations counts the users' tasks (closed model): with --arrival-rate, "
                             "bound the test with -t")
        if self.csv_full_history and not self.csv_prefix:
            raise UsageError("--csv-full-history needs --csv PREFIX: it writes PREFIX_stats_history.csv")
        if self.stop_timeout < 0:
            raise UsageError("--stop-timeout must be >= 0, e.g. --stop-timeout 10s")
        if self.dns_server:
            check_dns_server(self.dns_server)
        check_web(self.web_token, self.web_cert, self.web_key)
        self.plan()

    def plan(self) -> TestPlan:
        try:
            stages = tuple(parse_stages(self.stages)) if self.stages else ()
        except ValueError as exc:
            raise UsageError(f"--stages: {exc}") from None
        thresholds = []
        for text in self.thresholds:
            try:
                thresholds.append(parse_threshold(text))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        max_users = self.max_users
        if max_users is None:
            max_users = max(self.users, 1000) if self.arrival_rate is not None else self.users
        return TestPlan(
            users=self.users, spawn_rate=self.spawn_rate, run_time=self.run_time,
            arrival_rate=self.arrival_rate, max_users=max_users, pre_allocate=self.pre_allocate,
            stages=stages, stop_timeout=self.stop_timeout, thresholds=tuple(thresholds),
            abort_on_threshold=self.abort_on_threshold, exit_code_on_error=self.exit_code_on_error,
            allow_empty=self.allow_empty, quiet_after=self.stall_timeout, iterations=self.iterations,
            reset_stats=self.reset_stats,
        )

    def for_report(self) -> dict[str, Any]:
        data = self.to_dict()
        data.pop("extra", None)
        return {k: v for k, v in data.items() if v not in (None, (), [], False)}


def check_dns_server(server: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(parse_host_port(server, default_port=53).host)
    except ValueError:
        raise UsageError(f"--dns-server {server!r}: give an IP address and optional port, e.g. "
                         "--dns-server 127.0.0.1:53") from None


def check_web(token: str | None, certfile: str | None, keyfile: str | None) -> None:
    """--web-token is printable ASCII without spaces (it goes in a header); --web-cert and --web-key come as a pair."""
    if token is not None and not _TOKEN.fullmatch(token):
        raise UsageError("--web-token: use printable ASCII characters without spaces, e.g. "
                         "--web-token \"$(openssl rand -hex 16)\"")
    if bool(certfile) != bool(keyfile):
        given, missing = ("--web-cert", "--web-key") if certfile else ("--web-key", "--web-cert")
        raise UsageError(f"{given} needs {missing}: give both, e.g. --web-cert cert.pem --web-key key.pem")


def check_host(host: str) -> None:
    try:
        parts = urlsplit(host)
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        parts = urlsplit("invalid:")
    if any(ch.isspace() or ord(ch) < 32 for ch in host):
        raise UsageError(f"-H/--host {host!r} contains whitespace or control characters")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"-H/--host {host!r} is not an http(s) URL: use e.g. http://127.0.0.1:8080")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UsageError(f"-H/--host {host!r} has a bad port: use e.g. http://127.0.0.1:8080") from None


def parse_pool(text: str) -> tuple[str, int]:
    """``user`` or ``shared:N``."""
    if text == "user":
        return "user", 10
    if text.startswith("shared"):
        _, _, size = text.partition(":")
        try:
            n = int(size) if size else 10
        except ValueError:
            n = 0
        if n >= 1:
            return "shared", n
    raise UsageError(f"--pool {text!r}: use 'user' or 'shared:N' with N >= 1, e.g. --pool shared:50")
