"""JUnit XML for CI: one test case per threshold and one per endpoint that had failed requests.

Suites: ``loadgen.model.thresholds`` (a ``<failure>`` when the threshold failed), ``loadgen.endpoints`` (a
``<failure>`` listing the endpoint's top errors) and ``loadgen.run`` (the totals, plus a failing case when
the script raised exceptions). Text is stripped of characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from typing import Any

from loadgen.outputs.json_report import atomic_write_text

TOP_ERRORS = 10
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", str(value))


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return float(value)


def _suite(parent: ET.Element, name: str, report: dict) -> ET.Element:
    return ET.SubElement(parent, "testsuite", {"name": name, "timestamp": _text(report.get("started_at", "")),
                                               "time": f"{_num(report.get('duration_s')):.3f}"})


def _case(suite: ET.Element, classname: str, name: str, time_s: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": _text(name), "time": f"{time_s:.3f}"})


def _fail(case: ET.Element, kind: str, message: str, details: str = "") -> None:
    failure = ET.SubElement(case, "failure", {"type": kind, "message": _text(message)})
    if details:
        failure.text = _text(details)


def _close(suite: ET.Element) -> tuple[int, int]:
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    return len(cases), failures


def build_junit(report: dict) -> ET.Element:
    duration = _num(report.get("duration_s"))
    root = ET.Element("testsuites", {"name": "loadgen"})

    thresholds = _suite(root, "loadgen.model.thresholds", report)
    for t in report.get("thresholds") or []:
        expression = str(t.get("expression", ""))
        case = _case(thresholds, "loadgen.model.thresholds", expression, duration)
        if not t.get("pass"):
            observed = t.get("observed")
            shown = "no data" if observed is None else f"{observed:.6g}" if isinstance(observed, float) else str(observed)
            _fail(case, "threshold", f"threshold {expression} failed: observed {shown}")

    endpoints = _suite(root, "loadgen.endpoints", report)
    errors = report.get("errors") or []
    for e in report.get("endpoints") or []:
        failures = int(_num(e.get("failures")))
        if failures <= 0:
            continue
        method, name = e.get("method", ""), e.get("name", "")
        requests = int(_num(e.get("requests")))
        case = _case(endpoints, "loadgen.endpoints", f"{method} {name}", duration)
        rate = 100.0 * failures / requests if requests else 100.0
        rows = sorted((r for r in errors if r.get("method") == method and r.get("name") == name),
                      key=lambda r: -_num(r.get("count")))
        details = "\n".join(f"{int(_num(r.get('count')))} x {r.get('error', '')}" for r in rows[:TOP_ERRORS])
        if len(rows) > TOP_ERRORS:
            details += f"\n... and {len(rows) - TOP_ERRORS} more distinct errors"
        _fail(case, "errors", f"{failures} of {requests} requests failed ({rate:.2f}%)", details)

    run = _suite(root, "loadgen.run", report)
    totals = report.get("totals") or {}
    lat = totals.get("latency_ms") or {}
    case = _case(run, "loadgen.run", "load test", duration)
    out = ET.SubElement(case, "system-out")
    out.text = _text(
        f"requests {int(_num(totals.get('requests')))}, failures {int(_num(totals.get('failures')))}, "
        f"{_num(totals.get('rps')):.1f} req/s over {duration:.1f} s; latency ms p50 {_num(lat.get('p50')):g} "
        f"p95 {_num(lat.get('p95')):g} p99 {_num(lat.get('p99')):g} max {_num(lat.get('max')):g}"
        + (f"; stopped: {report['stop_reason']}" if report.get("stop_reason") else ""))
    exceptions = [r for r in errors if r.get("method") == "EXCEPTION"]
    if exceptions:
        case = _case(run, "loadgen.run", "script exceptions", duration)
        total = sum(int(_num(r.get("count"))) for r in exceptions)
        _fail(case, "exceptions", f"the script raised {total} exceptions",
              "\n".join(f"{int(_num(r.get('count')))} x {r.get('name', '')}: {r.get('error', '')}"
                        for r in exceptions[:TOP_ERRORS]))

    tests = failed = 0
    for suite in (thresholds, endpoints, run):
        n, f = _close(suite)
        tests, failed = tests + n, failed + f
    root.set("tests", str(tests))
    root.set("failures", str(failed))
    root.set("errors", "0")
    root.set("time", f"{duration:.3f}")
    return root


def render_junit(report: dict) -> str:
    root = build_junit(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: dict, path: str) -> None:
    """Atomically write the JUnit XML report to ``path``."""
    atomic_write_text(path, render_junit(report))
