"""Report outputs: console summary/live view, JSON and CSV, all rendered from one ``loadgen.report/1`` dict."""

from __future__ import annotations

from typing import Any

from loadgen.outputs.console import ConsoleOutput, format_live_line
from loadgen.outputs.csv_report import write_csv
from loadgen.outputs.json_report import write_json
from loadgen.outputs.summary import format_summary

__all__ = ["ConsoleOutput", "format_live_line", "format_summary", "write_csv", "write_json", "write_reports"]


def write_reports(report: dict[str, Any], json_path: str | None = None, csv_prefix: str | None = None,
                  html_path: str | None = None, junit_path: str | None = None) -> list[str]:
    """Write the requested file reports; return the paths written (JSON first, then CSV, then HTML)."""
    paths: list[str] = []
    if json_path:
        write_json(report, json_path)
        paths.append(json_path)
    if csv_prefix:
        paths += write_csv(report, csv_prefix)
    if html_path:
        from loadgen.outputs.html_report import write_html

        write_html(report, html_path)
        paths.append(html_path)
    if junit_path:
        from loadgen.outputs.junit import write_junit

        write_junit(report, junit_path)
        paths.append(junit_path)
    return paths
