"""HTML report: one self-contained file (inline CSS and JS, no network) rendered from a ``loadgen.report/1`` dict.

Tables are rendered here (escaped, readable without JavaScript); the charts over time are drawn by the same
``charts.js`` as the live dashboard, from the report's timeline embedded as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from loadgen.outputs.json_report import atomic_write_text
from loadgen.outputs.numbers import (
    PHASE_NAMES,
    as_number,
    fmt_bytes,
    fmt_count,
    fmt_duration,
    fmt_float,
    fmt_ms,
    fmt_observed,
    fmt_pct,
    fmt_rate,
    number_or_zero,
    phase_cell,
)
from loadgen.outputs.serving import read_asset

MAX_ERRORS = 200
Cell = tuple[str, str]  # (text, css class)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], empty: str, left: int = 0) -> str:
    """An escaped table; the first ``left`` columns are left-aligned, ``empty`` fills a table with no rows."""
    head = "".join(f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"
                        for text, cls in row)
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td class="empty" colspan="{len(headers)}">{escape(empty)}</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(title: str, content: str) -> str:
    """A titled card around already-escaped ``content``."""
    return f'<section class="card"><h2>{escape(title)}</h2>{content}</section>'


LATENCY_KEYS = ("p50", "p90", "p95", "p99", "p999", "max")


def _latency_cells(lat: dict[str, Any], keys: Sequence[str] = LATENCY_KEYS) -> list[Cell]:
    """Percentile cells (milliseconds) for one endpoint row."""
    return [(fmt_ms(lat.get(k)), "") for k in keys]


def timeline_rows(report: dict[str, Any]) -> list[list[float | None]]:
    """Compact per-second points for the charts: [t, users, requests, failures, p50, p95, p99]."""
    rows: list[list[float | None]] = []
    for p in report.get("timeline") or []:
        rows.append([number_or_zero(p.get("t")), number_or_zero(p.get("users")), number_or_zero(p.get("requests")),
                     number_or_zero(p.get("failures")), as_number(p.get("p50_ms")), as_number(p.get("p95_ms")),
                     as_number(p.get("p99_ms"))])
    return rows


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, ``<!--``)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_body(report: dict[str, Any]) -> str:
    """The page body: header, summary tiles, thresholds, chart canvases and the tables."""
    totals = report.get("totals") or {}
    lat = totals.get("latency_ms") or {}
    users = report.get("users") or {}
    options = report.get("options") or {}
    thresholds = report.get("thresholds") or []
    failed = [t for t in thresholds if not t.get("pass")]
    verdict = ""
    if thresholds:
        verdict = (f' &middot; <span class="fail">{len(failed)} of {len(thresholds)} thresholds failed</span>' if failed
                   else f' &middot; <span class="pass">all {len(thresholds)} thresholds passed</span>')
    target = options.get("host") or ""
    subtitle = (f"{escape(str(report.get('started_at', '')))} &middot; {fmt_duration(report.get('duration_s'))}"
                + (f" &middot; {escape(str(target))}" if target else "")
                + (f" &middot; stopped: {escape(str(report['stop_reason']))}" if report.get("stop_reason") else "")
                + verdict)
    out = [f"<header><h1>loadgen report</h1><p>{subtitle}</p></header><main>"]

    tiles = [
        (fmt_count(totals.get("requests")), "requests"),
        (f"{fmt_count(totals.get('failures'))} ({fmt_pct(totals.get('failures'), totals.get('requests'))})", "failures"),
        (fmt_rate(totals.get("rps")), "requests/s"),
        (f"{fmt_count(users.get('peak'))} / {fmt_count(users.get('target'))}", "users peak / target"),
        (fmt_ms(lat.get("p50")), "p50 ms"), (fmt_ms(lat.get("p95")), "p95 ms"), (fmt_ms(lat.get("p99")), "p99 ms"),
        (fmt_ms(lat.get("max")), "max ms"), (fmt_bytes(totals.get("bytes_received")), "received"),
    ]
    if totals.get("dropped"):
        tiles.append((fmt_count(totals.get("dropped")), "dropped iterations"))
    if totals.get("interrupted"):
        tiles.append((fmt_count(totals.get("interrupted")), "interrupted (cut off at the stop)"))
    out.append('<section class="tiles">' + "".join(
        f'<div class="tile"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div></div>' for v, k in tiles)
        + "</section>")

    if thresholds:
        rows = [[(str(t.get("expression", "")), "l"), ("pass" if t.get("pass") else "FAIL", "l pass" if t.get("pass") else "l fail"),
                 (fmt_observed(t.get("observed")), "")] for t in thresholds]
        out.append(_card("Thresholds", _table(["threshold", "result", "observed"], rows, "none", left=2)))

    out.append('<section class="charts">'
               '<div class="card"><h2>Throughput</h2><canvas id="chart-throughput"></canvas></div>'
               '<div class="card"><h2>Users</h2><canvas id="chart-users"></canvas></div>'
               '<div class="card"><h2>Latency</h2><canvas id="chart-latency"></canvas></div></section>')

    lat_headers = ["p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"]
    endpoints = report.get("endpoints") or []
    rows = []
    for e in endpoints:
        fail_cls = "fail" if e.get("failures") else ""
        rows.append([(str(e.get("method", "")), "l"), (str(e.get("name", "")), "wrap"), (fmt_count(e.get("requests")), ""),
                     (f"{fmt_count(e.get('failures'))} ({fmt_pct(e.get('failures'), e.get('requests'))})", fail_cls),
                     (fmt_rate(e.get("rps")), ""), (fmt_ms((e.get("latency_ms") or {}).get("mean")), ""),
                     *_latency_cells(e.get("latency_ms") or {})])
    if endpoints:
        rows.append([("", "l"), ("Aggregated", "l"), (fmt_count(totals.get("requests")), ""),
                     (f"{fmt_count(totals.get('failures'))} ({fmt_pct(totals.get('failures'), totals.get('requests'))})", ""),
                     (fmt_rate(totals.get("rps")), ""), (fmt_ms(lat.get("mean")), ""), *_latency_cells(lat)])
    out.append(_card("Endpoints", _table(["method", "name", "requests", "failures", "req/s", "mean ms", *lat_headers],
                                         rows, "no requests", left=2)))

    if totals.get("phases_ms"):
        phase_rows = [[(str(e.get("method", "")), "l"), (str(e.get("name", "")), "wrap"),
                       *((phase_cell((e.get("phases_ms") or {}).get(k), number_or_zero(e.get("requests"))), "")
                         for k, _ in PHASE_NAMES)]
                      for e in [*endpoints, {**totals, "name": "Aggregated"}] if e.get("phases_ms")]
        out.append(_card("Where the time went (p50/p95 ms; the count of requests that paid a phase)",
                         _table(["method", "name", *(label for _, label in PHASE_NAMES)], phase_rows, "no data",
                                left=2)))

    errors = sorted(report.get("errors") or [], key=lambda r: -number_or_zero(r.get("count")))
    rows = [[(fmt_count(r.get("count")), ""), (str(r.get("method", "")), "l"), (str(r.get("name", "")), "wrap"),
             (str(r.get("error", "")), "wrap")] for r in errors[:MAX_ERRORS]]
    more = f" (top {MAX_ERRORS} of {len(errors)})" if len(errors) > MAX_ERRORS else ""
    out.append(_card("Errors" + more, _table(["count", "method", "name", "error"], rows, "no errors")))

    c = report.get("connections") or {}
    conn = [[(fmt_count(c.get(k)), "") for k in ("opened", "closed", "tls_handshakes", "tls_resumed", "dns_lookups",
                                                "dns_hits", "retries", "idle_dropped", "connect_fallbacks")] + [(fmt_rate(c.get("requests_per_connection")), "")]]
    out.append(_card("Connections", _table(["opened", "closed", "TLS handshakes", "TLS resumed", "DNS lookups",
                                            "DNS cache hits", "retries", "idle closed by server",
                                            "address fallbacks", "requests/connection"], conn if c else [], "no data")))

    workers = report.get("workers") or []
    rows = [[(str(w.get("id", "")), "l"), (str(w.get("host", "")), "l"), (str(w.get("state", "")), "l"),
             (fmt_count(w.get("users")), ""), (fmt_count(w.get("requests")), ""), (fmt_count(w.get("failures")), ""),
             (fmt_float(w.get("cpu_percent")), ""), (fmt_float(w.get("rss_mb")), "")] for w in workers]
    out.append(_card(f"Workers ({len(workers)})", _table(["worker", "host", "state", "peak users", "requests", "failures",
                                                          "CPU %", "RSS MB"], rows, "none", left=3)))

    warnings = report.get("warnings") or []
    items = "".join(f"<li>[{escape(fmt_float(w.get('t'), 1))} s] {escape(str(w.get('kind', '')))}: "
                    f"{escape(str(w.get('message', '')))}</li>" for w in warnings) or "<li>none</li>"
    out.append(_card("Warnings", f"<ul>{items}</ul>"))

    rows = [[(str(k), "l"), (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v), "wrap")]
            for k, v in sorted(options.items())]
    out.append(_card("Options", _table(["option", "value"], rows, "none", left=2)))
    out.append("</main>")
    return "".join(out)


def render_html(report: dict[str, Any], read: Callable[[str], str] = read_asset) -> str:
    """The whole report page as a string."""
    title = f"loadgen report {report.get('started_at', '')}".strip()
    page = read("report.html")
    charts = read("charts.js").replace("</script", "<\\/script")
    # the body goes in last: escaped report text can never reach a marker that is still to be replaced
    # (the data JSON escapes "<", so it cannot contain the title or body markers either)
    page = page.replace("/*@charts.js@*/", charts, 1).replace("/*@data@*/", script_json(timeline_rows(report)), 1)
    page = page.replace("<!--@title@-->", escape(title), 1)
    return page.replace("<!--@body@-->", render_body(report), 1)


def write_html(report: dict[str, Any], path: str) -> None:
    """Atomically write the self-contained HTML report to ``path``."""
    atomic_write_text(path, render_html(report))
