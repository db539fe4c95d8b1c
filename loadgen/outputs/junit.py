"""JUnit XML for CI: one test case per threshold and one per endpoint that had failed requests.

Suites: ``loadgen.model.thresholds`` (a ``<failure>`` when the threshold failed), ``loadgen.endpoints`` (a
``<failure>`` listing the endpoint's top errors) and ``loadgen.run`` (the totals, plus a failing case when
the script raised exceptions). Text is stripped of characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from loadgen.outputs.json_report import atomic_write_text
from loadgen.outputs.numbers import (
    fmt_count,
    fmt_duration,
    fmt_float,
    fmt_ms,
    fmt_observed,
    fmt_pct,
    fmt_rate,
    number_or_zero,
)

TOP_ERRORS = 10
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    """``value`` as text XML 1.0 can carry (invalid characters replaced)."""
    return _INVALID_XML.sub("\ufffd", str(value))


def _int(value: Any) -> str:
    """A count as a plain integer (no thousands separators, as CI tools expect)."""
    return fmt_count(number_or_zero(value), grouping=False)


def _seconds(value: float) -> str:
    """A JUnit ``time`` attribute: seconds with 3 decimals."""
    return fmt_float(value, 3, grouping=False)


def _suite(parent: ET.Element, name: str, report: dict[str, Any]) -> ET.Element:
    """A ``<testsuite>`` stamped with the run's start and duration."""
    return ET.SubElement(parent, "testsuite", {"name": name, "timestamp": _text(report.get("started_at", "")),
                                               "time": _seconds(number_or_zero(report.get("duration_s")))})


def _case(suite: ET.Element, classname: str, name: str, time_s: float = 0.0) -> ET.Element:
    """A ``<testcase>`` in ``suite``."""
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": _text(name), "time": _seconds(time_s)})


def _fail(case: ET.Element, kind: str, message: str, details: str = "") -> None:
    """Mark ``case`` failed, with a one-line ``message`` and optional multi-line ``details``."""
    failure = ET.SubElement(case, "failure", {"type": kind, "message": _text(message)})
    if details:
        failure.text = _text(details)


def _close(suite: ET.Element) -> tuple[int, int]:
    """Set the suite's counters; return (tests, failures)."""
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    return len(cases), failures


def build_junit(report: dict[str, Any]) -> ET.Element:
    """The ``<testsuites>`` tree for ``report``."""
    duration = number_or_zero(report.get("duration_s"))
    root = ET.Element("testsuites", {"name": "loadgen"})

    thresholds = _suite(root, "loadgen.model.thresholds", report)
    for t in report.get("thresholds") or []:
        expression = str(t.get("expression", ""))
        case = _case(thresholds, "loadgen.model.thresholds", expression, duration)
        if not t.get("pass"):
            observed = t.get("observed")
            shown = "no data" if observed is None else fmt_observed(observed)
            _fail(case, "threshold", f"threshold {expression} failed: observed {shown}")

    endpoints = _suite(root, "loadgen.endpoints", report)
    errors = report.get("errors") or []
    for e in report.get("endpoints") or []:
        failures = number_or_zero(e.get("failures"))
        if failures <= 0:
            continue
        method, name = e.get("method", ""), e.get("name", "")
        requests = max(number_or_zero(e.get("requests")), failures)  # failures of 0 requests: 100%
        case = _case(endpoints, "loadgen.endpoints", f"{method} {name}", duration)
        rows = sorted((r for r in errors if r.get("method") == method and r.get("name") == name),
                      key=lambda r: -number_or_zero(r.get("count")))
        details = "\n".join(f"{_int(r.get('count'))} x {r.get('error', '')}" for r in rows[:TOP_ERRORS])
        if len(rows) > TOP_ERRORS:
            details += f"\n... and {len(rows) - TOP_ERRORS} more distinct errors"
        _fail(case, "errors", f"{_int(failures)} of {_int(requests)} requests failed ({fmt_pct(failures, requests)})",
              details)

    run = _suite(root, "loadgen.run", report)
    totals = report.get("totals") or {}
    lat = totals.get("latency_ms") or {}
    case = _case(run, "loadgen.run", "load test", duration)
    out = ET.SubElement(case, "system-out")
    out.text = _text(
        f"requests {_int(totals.get('requests'))}, failures {_int(totals.get('failures'))}, "
        f"{fmt_rate(totals.get('rps'))} req/s over {fmt_duration(duration)}; latency ms p50 {fmt_ms(lat.get('p50'))} "
        f"p95 {fmt_ms(lat.get('p95'))} p99 {fmt_ms(lat.get('p99'))} max {fmt_ms(lat.get('max'))}"
        + (f"; stopped: {report['stop_reason']}" if report.get("stop_reason") else ""))
    exceptions = [r for r in errors if r.get("method") == "EXCEPTION"]
    if exceptions:
        case = _case(run, "loadgen.run", "script exceptions", duration)
        total = sum(number_or_zero(r.get("count")) for r in exceptions)
        _fail(case, "exceptions", f"the script raised {_int(total)} exceptions",
              "\n".join(f"{_int(r.get('count'))} x {r.get('name', '')}: {r.get('error', '')}"
                        for r in exceptions[:TOP_ERRORS]))

    tests = failed = 0
    for suite in (thresholds, endpoints, run):
        n, f = _close(suite)
        tests, failed = tests + n, failed + f
    root.set("tests", str(tests))
    root.set("failures", str(failed))
    root.set("errors", "0")
    root.set("time", _seconds(duration))
    return root


def render_junit(report: dict[str, Any]) -> str:
    """The JUnit XML document as a string."""
    root = build_junit(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: dict[str, Any], path: str) -> None:
    """Atomically write the JUnit XML report to ``path``."""
    atomic_write_text(path, render_junit(report))
