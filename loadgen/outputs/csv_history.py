"""``--csv-full-history``: ``PREFIX_stats_history.csv``, Locust's per-second history, from the live snapshots.

Each second: a row per endpoint the snapshot carries (the 200 busiest) and an ``Aggregated`` row, with the
second's request and failure rates and the counts and percentiles since the start (cumulative, as Locust's).
A last set of rows comes from the report, so the file ends with the test's final numbers.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

from loadgen.model.errors import UsageError

HEADER = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "95%", "99%",
          "Total Request Count", "Total Failure Count"]


class CsvHistoryOutput:
    """A live output: one CSV row per endpoint and one aggregated row for every snapshot."""

    describe = "CSV history"
    url = None

    def __init__(self, prefix: str) -> None:
        self.path = f"{prefix}_stats_history.csv"
        try:
            self._file: TextIO = open(self.path, "w", newline="")  # noqa: SIM115 - open for the test's length
        except OSError as exc:
            raise UsageError(f"--csv-full-history: cannot write {self.path}: {exc.strerror}") from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(HEADER)
        self._failures: dict[tuple[str, str], int] = {}
        self._last_t = 0.0
        self._last_ts = 0

    def on_snapshot(self, snapshot: dict[str, Any]) -> None:
        interval = max(1e-3, snapshot["elapsed"] - self._last_t)
        self._last_t = snapshot["elapsed"]
        ts, users = int(snapshot["ts"]), snapshot["users"]
        self._last_ts = ts
        write = self._writer.writerow
        for row in snapshot["endpoints"]:
            key = (row["method"], row["name"])
            new_failures = max(0, row["failures"] - self._failures.get(key, 0))  # 0 after --reset-stats
            self._failures[key] = row["failures"]
            write([ts, users, row["method"], row["name"], row["rps"], round(new_failures / interval, 2), "",
                   row["p95_ms"], "", row["requests"], row["failures"]])
        cumulative = snapshot["cumulative"]
        write([ts, users, "", "Aggregated", snapshot["rps"], snapshot["fps"], cumulative["p50_ms"],
               cumulative["p95_ms"], cumulative["p99_ms"], snapshot["requests"], snapshot["failures"]])
        self._file.flush()

    def on_report(self, report: dict[str, Any]) -> None:
        """The final rows: every endpoint and the totals, with the report's percentiles."""
        write = self._writer.writerow
        users = report.get("users", {}).get("peak", "")
        ts = self._last_ts + 1 if self._last_ts else ""
        for row in report["endpoints"]:
            latency = row["latency_ms"]
            write([ts, users, row["method"], row["name"], row["rps"], "", latency["p50"], latency["p95"],
                   latency["p99"], row["requests"], row["failures"]])
        totals = report["totals"]
        latency = totals["latency_ms"]
        write([ts, users, "", "Aggregated", totals["rps"], "", latency["p50"], latency["p95"], latency["p99"],
               totals["requests"], totals["failures"]])
        self._file.flush()

    def close(self) -> None:
        self._file.close()
