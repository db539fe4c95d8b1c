"""Tests for loadgen.outputs: JSON, CSV, console summary and live output."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from report_fixtures import empty_report, sample_report, sample_snapshot

from loadgen.outputs import (
    ConsoleOutput,
    format_live_line,
    format_summary,
    write_csv,
    write_json,
    write_reports,
)
from loadgen.outputs.numbers import fmt_count, fmt_ms
from loadgen.outputs.summary import MAX_ERRORS
from loadgen.outputs.text import clean_text

# --------------------------------------------------------------------------- JSON


def test_json_round_trip(tmp_path: Path) -> None:
    report = sample_report()
    path = tmp_path / "deep" / "dir" / "report.json"
    write_json(report, str(path))
    assert json.loads(path.read_text(encoding="utf-8")) == report
    assert "日本語" in path.read_text(encoding="utf-8")  # not \u-escaped
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left behind


def test_json_is_strict_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    report = sample_report()
    report["totals"]["latency_ms"]["max"] = float("nan")
    report["options"]["out"] = tmp_path  # non-JSON type
    write_json(report, str(path))
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert data["totals"]["latency_ms"]["max"] is None
    assert data["options"]["out"] == str(tmp_path)
    assert data["schema"] == "loadgen.report/1"


def test_json_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_json(sample_report(), str(path))
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.json"]  # temp file cleaned up


# --------------------------------------------------------------------------- CSV


def _read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_files(tmp_path: Path) -> None:
    report = sample_report()
    paths = write_csv(report, str(tmp_path / "sub" / "run"))
    assert [Path(p).name for p in paths] == ["run_stats.csv", "run_errors.csv", "run_timeline.csv"]

    with open(paths[0], newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == [
        "method",
        "name",
        "requests",
        "failures",
        "rps",
        "min",
        "mean",
        "p50",
        "p90",
        "p95",
        "p99",
        "p999",
        "max",
        "bytes_received",
        "interrupted",
    ]
    stats = _read_csv(paths[0])
    assert [r["name"] for r in stats] == [e["name"] for e in report["endpoints"]] + ["Aggregated"]
    assert stats[-1]["requests"] == "48000" and stats[-1]["method"] == ""
    assert float(stats[1]["p99"]) == pytest.approx(report["endpoints"][1]["latency_ms"]["p99"])
    assert stats[2]["name"] == "/produits/café-crème/日本語"

    errors = _read_csv(paths[1])
    assert [(e["error"], int(e["count"])) for e in errors] == [
        (e["error"], e["count"]) for e in report["errors"]
    ]

    timeline = _read_csv(paths[2])
    assert list(timeline[0]) == list(report["timeline"][0])
    assert len(timeline) == len(report["timeline"])
    assert float(timeline[-1]["t"]) == 60.0


def test_csv_empty_report_and_ragged_timeline(tmp_path: Path) -> None:
    report = empty_report()
    report["timeline"] = [{"t": 1.0, "users": 1}, {"t": 2.0, "users": 2, "extra": 0.1 + 0.2}]
    stats, errors, timeline = write_csv(report, str(tmp_path / "e"))
    assert [r["name"] for r in _read_csv(stats)] == ["Aggregated"]
    assert _read_csv(errors) == []
    rows = _read_csv(timeline)
    assert rows[0] == {"t": "1", "users": "1", "extra": ""}
    assert rows[1]["extra"] == "0.3"


def test_write_reports(tmp_path: Path) -> None:
    report = sample_report()
    assert write_reports(report) == []
    paths = write_reports(report, json_path=str(tmp_path / "r.json"), csv_prefix=str(tmp_path / "r"))
    assert len(paths) == 4 and all(os.path.exists(p) for p in paths)


# --------------------------------------------------------------------------- summary


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"--- {title}"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


def test_summary_contents() -> None:
    report = sample_report()
    text = format_summary(report)
    assert "\x1b" not in text
    endpoint_lines = _section(text, "Endpoints")
    for ep in report["endpoints"]:
        assert any(ep["name"] in line and ep["method"] in line for line in endpoint_lines)
    agg = next(line for line in endpoint_lines if "Aggregated" in line)
    assert "48,000" in agg and "252 (0.53%)" in agg and "800.0" in agg
    orders = next(line for line in endpoint_lines if "/api/orders" in line)
    assert orders.split()[2:] == ["12,000", "240", "(2.00%)", "200.0", "10", "33", "59", "482"]

    error_lines = _section(text, "Errors")
    for err in report["errors"]:
        assert any(err["error"] in line and fmt_count(err["count"]) in line for line in error_lines)

    conn = next(line for line in text.splitlines() if line.startswith("Connections:"))
    for part in (
        "opened 220",
        "TLS full/resumed 20/200",
        "DNS lookups/hits 4/216",
        "218.2 requests/connection",
    ):
        assert part in conn

    workers = _section(text, "Workers")
    assert any(line.split()[:5] == ["w-3c4d", "loadbox-2", "done", "100", "23,900"] for line in workers)
    assert "CPU above 90%" in "\n".join(_section(text, "Warnings"))
    thresholds = _section(text, "Thresholds")
    assert any(line.split()[:2] == ["PASS", "p99<300ms"] for line in thresholds)
    assert any(line.split()[:2] == ["FAIL", "error_rate<0.5%"] for line in thresholds)


def test_summary_columns_aligned_with_unicode() -> None:
    from rich.cells import cell_len

    lines = _section(format_summary(sample_report()), "Endpoints")
    rule = lines[1]
    # every right-aligned column ends at the same display cell as its rule segment
    ends = [i + len(seg) for i, seg in _segments(rule)]
    for line in lines[2:]:
        if set(line) <= {"-", " "}:
            continue
        assert cell_len(line) == ends[-1]


def _segments(rule: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for seg in rule.split("  "):
        out.append((pos, seg))
        pos += len(seg) + 2
    return out


def test_summary_error_truncation() -> None:
    report = sample_report()
    report["errors"] = [
        {"method": "GET", "name": f"/e{i}", "error": f"boom {i}", "count": i + 1} for i in range(25)
    ]
    text = format_summary(report)
    shown = [line for line in _section(text, "Errors") if "boom" in line]
    assert len(shown) == MAX_ERRORS
    assert "boom 24" in shown[0]  # highest count first
    assert "boom 4" not in text  # lowest five hidden
    assert "… 5 more (15 occurrences)" in text


def test_summary_sanitises_hostile_text() -> None:
    report = sample_report()
    report["errors"] = [
        {"method": "GET", "name": "/x", "error": "line1\nline2\x1b[31mred" + "y" * 500, "count": 1}
    ]
    text = format_summary(report)
    assert "\x1b" not in text
    line = next(line for line in text.splitlines() if "line1" in line)
    assert "line2" in line and line.endswith("…")
    assert clean_text("日本語日本語", 5) == "日本…"


def test_summary_empty_report() -> None:
    text = format_summary(empty_report())
    assert "no requests were completed" in text
    agg = next(line for line in text.splitlines() if "Aggregated" in line)
    assert agg.split()[1:] == ["0", "0", "(0.00%)", "0.0", "-", "-", "-", "-"]
    assert "Connections: opened 0" in text
    assert format_summary({})  # even a bare dict renders


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.456, "0.46"),
        (9.5, "9.50"),
        (9.999, "10"),
        (12.6, "13"),
        (12345.0, "12,345"),
        (None, "-"),
        (float("nan"), "-"),
    ],
)
def test_fmt_ms(value: float | None, expected: str) -> None:
    assert fmt_ms(value) == expected


def test_html_report_and_summary_show_the_same_figures() -> None:
    from html import unescape

    from loadgen.outputs.html_report import render_body

    report = sample_report()
    report["totals"].update(requests=10_000, failures=1_234, bytes_received=1_536_000)
    report["totals"]["latency_ms"]["p99"] = 12.3456
    report["thresholds"] = [{"expression": "p99<10ms", "observed": 1234.5678, "pass": False}]
    summary = format_summary(report)
    page = unescape(render_body(report))
    tiles = {k: v for v, k in re.findall(r'<div class="v">([^<]*)</div><div class="k">([^<]*)</div>', page)}

    console_p99 = re.search(r"latency ms: .*\bp99 ([^,]+),", summary)
    assert console_p99 is not None and console_p99.group(1) == tiles["p99 ms"] == "12"
    assert "received 1.5 MiB" in summary and tiles["received"] == "1.5 MiB"
    assert "failures 1,234 (12.3%)" in summary and tiles["failures"] == "1,234 (12.3%)"
    assert "observed 1235" in summary and "<td>1235</td>" in page


# --------------------------------------------------------------------------- live output


def test_live_line() -> None:
    line = format_live_line(sample_snapshot())
    assert "\n" not in line
    for part in ("00:12", "users 100", "reqs 9,000", "812.0 req/s", "fails 3 (0.03%)", "1.21/3.41/9.89 ms"):
        assert part in line
    assert "00:12/05:00" in format_live_line(sample_snapshot(run_time=300.0))
    zero = format_live_line(
        {"elapsed": 0.0, "users": 0, "requests": 0, "failures": 0, "rps": 0.0, "current": {}}
    )
    assert "fails 0 (0.00%)" in zero and "-/-/- ms" in zero


def test_console_plain_interval_and_quiet() -> None:
    out = io.StringIO()
    console = ConsoleOutput(stream=out, interval=2.0)
    assert not console.live
    for t in range(1, 8):
        console.on_snapshot(sample_snapshot(elapsed=float(t)))
    lines = out.getvalue().splitlines()
    assert [line[:7] for line in lines] == ["[00:01]", "[00:03]", "[00:05]", "[00:07]"]
    console.on_report(sample_report())
    assert "Aggregated" in out.getvalue()

    quiet_out, quiet_warnings = io.StringIO(), io.StringIO()
    quiet = ConsoleOutput(stream=quiet_out, quiet=True, warn_stream=quiet_warnings)
    first = sample_snapshot()
    quiet.on_snapshot(first)
    # -q keeps the warnings: each printed once, the moment it appears; no live lines
    assert quiet_out.getvalue() == "" and quiet_warnings.getvalue().count("loadgen: warning: ") == len(first["warnings"]) > 0
    shown = quiet_warnings.getvalue()
    warned = dict(first, warnings=[*first["warnings"], {"kind": "pacing", "message": "users cannot keep their pace"}])
    quiet.on_snapshot(warned)
    quiet.on_snapshot(warned)
    assert quiet_out.getvalue() == ""
    assert quiet_warnings.getvalue() == shown + "loadgen: warning: [pacing] users cannot keep their pace\n"
    quiet.on_report(empty_report())
    assert "Aggregated" in quiet_out.getvalue()


def test_console_rich_live_view() -> None:
    out = io.StringIO()
    with ConsoleOutput(stream=out, live=True) as console:
        for t in range(1, 4):
            console.on_snapshot(sample_snapshot(elapsed=float(t), run_time=10.0, target_users=200))
        console.on_snapshot(
            sample_snapshot(
                endpoints=[{"method": "GET", "name": f"/p{i}", "requests": i} for i in range(20)], current={}
            )
        )
        rendered = out.getvalue()
        assert "/api/orders" in rendered and "HTTP 503" in rendered and "master CPU high" in rendered
        assert "left" in rendered and "ramp" in rendered and "… 5 more" in rendered
        console.on_report(sample_report())
    assert out.getvalue().rstrip().endswith("1 passed, 1 failed")
    assert console._errors[("POST", "/api/orders", "HTTP 503")] == 4


def test_console_live_view_falls_back_to_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    console = ConsoleOutput(stream=out, live=True)

    def broken(snapshot: dict) -> None:
        raise RuntimeError("terminal gone")

    monkeypatch.setattr(console, "_update_live", broken)
    console.on_snapshot(sample_snapshot())
    assert not console.live and out.getvalue().startswith("[00:12]")
