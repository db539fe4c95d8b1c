"""Locust, for comparison only, in its own virtualenv (``bench/.locust-venv``) so it never mixes with loadgen's.

    python bench/locust_env.py          # create or reuse the venv; prints the locust version

Installed from PyPI with pip (``locust`` unpinned; the version is recorded in the results). Never imported by
loadgen or its tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".locust-venv"
sys.path.insert(0, str(BENCH))

from nginx import pinned  # noqa: E402
from venvs import ensure_venv  # noqa: E402


def locust_bin() -> Path:
    return VENV / "bin" / "locust"


def ensure_locust(log: Any = print) -> str:
    """Create ``bench/.locust-venv`` and ``pip install locust`` unless it already works; return the version."""
    ensure_venv(VENV, "locust", "locust", log)
    out = subprocess.run([str(locust_bin()), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split(" from ")[0]


def locust_command(script: Path, host: str, users: int, spawn_rate: float, seconds: float,
                   cpu: str | None = "0") -> list[str]:
    """Headless Locust, JSON stats on stdout, console summary off (it goes to stderr)."""
    return pinned(cpu, [str(locust_bin()), "-f", str(script), "--headless", "-u", str(users), "-r", str(spawn_rate),
                        "-t", f"{seconds:g}s", "-H", host, "--json", "--only-summary", "--loglevel", "WARNING",
                        "--skip-log-setup"])


def parse_locust_json(stdout: str, skip_first: int = 2, last: int | None = None) -> dict[str, Any]:
    """Requests, whole-run and steady req/s from ``locust --json``.

    Whole run: total requests / (last request - start). Steady: the per-second counts
    (``num_reqs_per_sec``) without the first ``skip_first`` and the last (partial) second, or only the
    ``last`` full seconds before the final one.
    """
    start = stdout.find("[")
    rows = json.loads(stdout[start:stdout.rindex("]") + 1])
    requests = sum(r["num_requests"] for r in rows)
    failures = sum(r["num_failures"] for r in rows)
    first = min(r["start_time"] for r in rows)
    last_ts = max(r["last_request_timestamp"] or first for r in rows)
    per_second: dict[int, int] = {}
    for r in rows:
        for ts, n in r["num_reqs_per_sec"].items():
            per_second[int(ts)] = per_second.get(int(ts), 0) + n
    seconds = [per_second.get(t, 0) for t in range(min(per_second), max(per_second) + 1)] if per_second else []
    window = seconds[-(last + 1):-1] if last else seconds[skip_first:-1]
    return {
        "requests": requests, "failures": failures, "duration_s": round(last_ts - first, 3),
        "rps": round(requests / (last_ts - first), 1) if last_ts > first else 0.0,
        "steady_rps": round(sum(window) / len(window), 1) if window else None,
        "per_second": seconds,
    }


if __name__ == "__main__":
    os.chdir(BENCH.parent)
    print(ensure_locust())
