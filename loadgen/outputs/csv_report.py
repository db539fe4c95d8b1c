"""CSV reports: ``{prefix}_stats.csv``, ``{prefix}_errors.csv`` and ``{prefix}_timeline.csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from loadgen.outputs.json_report import atomic_write_text
from loadgen.outputs.numbers import as_number, rounded

PERCENTILE_KEYS = ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
STATS_COLUMNS = ("method", "name", "requests", "failures", "rps", *PERCENTILE_KEYS, "bytes_received", "interrupted")
ERRORS_COLUMNS = ("method", "name", "error", "count")


def _cell(value: Any) -> Any:
    """CSV cell for a value: None/NaN empty, floats rounded to 3 decimals (no 0.30000000000000004)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        v = as_number(value)
        return "" if v is None else rounded(v, 3)
    return value


def _stats_row(method: str, name: str, src: dict[str, Any]) -> list[Any]:
    """One row of the stats file: counts, rate, latency percentiles and bytes."""
    lat = src.get("latency_ms") or {}
    row: list[Any] = [method, name, src.get("requests", 0), src.get("failures", 0), src.get("rps", 0.0)]
    row += [lat.get(k) for k in PERCENTILE_KEYS]
    row += [src.get("bytes_received", 0), src.get("interrupted", 0)]
    return [_cell(v) for v in row]


def _render(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text: the header row, then ``rows``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def _timeline_columns(timeline: list[dict[str, Any]]) -> list[str]:
    """Union of the timeline keys in first-seen order, ``t`` first."""
    cols: dict[str, None] = {"t": None}
    for point in timeline:
        cols.update(dict.fromkeys(point))
    return list(cols)


def write_csv(report: dict[str, Any], prefix: str) -> list[str]:
    """Write the stats, errors and timeline CSV files for ``report``; return their paths."""
    endpoints = report.get("endpoints") or []
    stats_rows = [_stats_row(e.get("method", ""), e.get("name", ""), e) for e in endpoints]
    stats_rows.append(_stats_row("", "Aggregated", report.get("totals") or {}))

    error_rows = [[_cell(e.get(c)) for c in ERRORS_COLUMNS] for e in report.get("errors") or []]

    timeline = report.get("timeline") or []
    tl_cols = _timeline_columns(timeline)
    tl_rows = [[_cell(p.get(c)) for c in tl_cols] for p in timeline]

    outputs = [
        (f"{prefix}_stats.csv", _render(STATS_COLUMNS, stats_rows)),
        (f"{prefix}_errors.csv", _render(ERRORS_COLUMNS, error_rows)),
        (f"{prefix}_timeline.csv", _render(tl_cols, tl_rows)),
    ]
    for path, text in outputs:
        atomic_write_text(path, text, newline="")
    return [path for path, _ in outputs]
