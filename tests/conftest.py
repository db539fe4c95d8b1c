"""Shared fixtures: the built-in target (HTTP and HTTPS) and a helper that runs the loadgen CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zmq

sys.path.insert(0, os.path.dirname(__file__))

# The fault suite (network namespaces, minutes of faults) is its own target: `make faults` (CI runs both).
collect_ignore = [] if os.environ.get("LOADGEN_FAULTS") else ["faults"]

from fleet import Fleet  # noqa: E402
from servers import reset_target, start_target, stop_process, target_stats  # noqa: E402


@pytest.fixture
def fleet(tmp_path: Any) -> Iterator[Fleet]:
    """Masters and workers started in the test's folder; every one of them killed at teardown."""
    group = Fleet(tmp_path)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def target() -> Iterator[str]:
    """Base URL of a built-in HTTP target shared by the session."""
    proc, url = start_target()
    yield url
    stop_process(proc)


@pytest.fixture(scope="session")
def tls_target() -> Iterator[str]:
    proc, url = start_target(tls=True)
    yield url
    stop_process(proc)


@pytest.fixture
def fresh_target(target: str) -> str:
    reset_target(target)
    return target


@pytest.fixture
def zctx() -> Iterator[zmq.Context]:
    """A ZeroMQ context for the test's raw peers, destroyed at teardown."""
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None


def run_loadgen(args: list[str], cwd: str | os.PathLike[str], timeout: float = 60.0,
                env: dict[str, str] | None = None) -> Result:
    """Run ``python -m loadgen ARGS`` and read ``report.json`` from ``cwd`` when the args asked for it."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "loadgen", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    report = None
    if "--json" in args:
        path = os.path.join(cwd, args[args.index("--json") + 1])
        if os.path.exists(path):
            with open(path) as handle:
                report = json.load(handle)
    return Result(proc.returncode, proc.stdout, proc.stderr, report)


__all__ = ["Result", "run_loadgen", "target_stats"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """``make test`` (LOADGEN_NO_SKIPS=1) runs every test: a skip there is a missing install step, so it fails."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("LOADGEN_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but make test runs every test (install what it needs): {reason}"
