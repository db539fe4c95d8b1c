"""`make demo` on a fresh machine: the built-in target, a master and two workers over CURVE with keys made for
the run, a short test, the summary (what ``make demo`` runs after installing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(150)
def test_the_demo_runs_a_secure_fleet_in_one_command(tmp_path: Path) -> None:
    report_path = tmp_path / "demo-report.json"
    env = dict(os.environ, LOADGEN_DEMO_REPORT=str(report_path), LOADGEN_KEYS=str(tmp_path / "no-default-keys"))
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "demo.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=140)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Aggregated" in out and "Traceback" not in out
    assert "master key SHA256:" in out and "--insecure-no-auth" not in out  # the fleet ran over CURVE
    report = json.loads(report_path.read_text())
    assert len(report["workers"]) == 2 and all(row["requests"] > 0 for row in report["workers"])
    assert report["totals"]["requests"] == sum(row["requests"] for row in report["workers"]) > 100
    assert not (tmp_path / "no-default-keys").exists()  # its keys were its own, not the user's default
