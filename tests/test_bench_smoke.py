"""The benchmark harness must not rot: ``bench/run.py --smoke`` (2 s of loadgen and of the lean loop over HTTP,
against nginx or the built-in target, plus the histogram check on 1e5 samples). Never installs Locust."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_smoke(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "## Throughput" in proc.stdout and "loadgen/lean" in proc.stdout

    throughput = json.loads((tmp_path / "throughput.json").read_text())
    tools = {run["tool"] for run in throughput["runs"]}
    assert tools == {"loadgen", "lean"}  # no Locust in smoke mode
    for run in throughput["runs"]:
        assert run["requests"] > 0 and run["failures"] == 0, run
        assert run["rate"] > 0
    assert throughput["summary"]["ratio_loadgen_lean_http"]["ratio_of_medians"] > 0

    percentiles = json.loads((tmp_path / "accuracy.json").read_text())["percentiles"]
    assert percentiles["max_rel_error_pct"] < 1.0  # the histogram promises <= 1 % relative error
    assert (tmp_path / "latest.md").read_text().startswith("# loadgen benchmark")
