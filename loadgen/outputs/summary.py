"""The final run summary: a ``loadgen.report/1`` dict as aligned plain text (no colour codes)."""

from __future__ import annotations

from typing import Any

from loadgen.outputs.numbers import (
    PHASE_NAMES,
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
from loadgen.outputs.text import MAX_ERROR_CELLS, MAX_NAME_CELLS, clean_text, render_table, rule, warning_text

MAX_ERRORS = 20  # distinct errors listed; the rest are counted in one line
MAX_ENDPOINT_ROWS = 30  # endpoints listed (the busiest); the rest are summed up in one line
LATENCY_KEYS = ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")

ENDPOINT_HEADERS = ("Method", "Name", "Reqs", "Fails", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
ENDPOINT_RIGHT = (False, False, True, True, True, True, True, True, True)


def endpoint_row(method: Any, name: Any, src: dict[str, Any], interrupted: bool = False) -> list[str]:
    """The cells of one endpoint (or the aggregated totals) in the endpoints table; with the interrupted
    column when some request of the test was cut off."""
    reqs, fails = src.get("requests", 0), src.get("failures", 0)
    lat = (src.get("latency_ms") or {}) if reqs else {}
    cells = [
        clean_text(method, 10),
        clean_text(name, MAX_NAME_CELLS),
        fmt_count(reqs),
        f"{fmt_count(fails)} ({fmt_pct(fails, reqs)})",
        fmt_rate(src.get("rps", 0.0)),
        fmt_ms(lat.get("p50")),
        fmt_ms(lat.get("p95")),
        fmt_ms(lat.get("p99")),
        fmt_ms(lat.get("max")),
    ]
    if interrupted:
        cells.insert(4, fmt_count(src.get("interrupted", 0)))
    return cells


def busiest(endpoints: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``MAX_ENDPOINT_ROWS`` busiest endpoints, in report order, and the rest."""
    if len(endpoints) <= MAX_ENDPOINT_ROWS:
        return endpoints, []
    ranked = sorted(endpoints, key=lambda e: -number_or_zero(e.get("requests")))
    top = {id(e) for e in ranked[:MAX_ENDPOINT_ROWS]}
    return [e for e in endpoints if id(e) in top], ranked[MAX_ENDPOINT_ROWS:]


def endpoint_table(report: dict[str, Any]) -> list[str]:
    """Every endpoint's row and the aggregated totals (an ``Interrupted`` column when any request was)."""
    totals = report.get("totals") or {}
    cut = bool(number_or_zero(totals.get("interrupted")))
    shown, rest = busiest(report.get("endpoints") or [])
    rows = [endpoint_row(e.get("method", ""), e.get("name", ""), e, cut) for e in shown]
    if rest:
        rest_totals = {key: sum(number_or_zero(e.get(key)) for e in rest) for key in ("requests", "failures",
                                                                                      "interrupted", "rps")}
        rows.append(endpoint_row("", f"… {len(rest):,} more endpoints", rest_totals, cut))
    rows.append(endpoint_row("", "Aggregated", totals, cut))
    headers, right = list(ENDPOINT_HEADERS), list(ENDPOINT_RIGHT)
    if cut:
        headers.insert(4, "Interrupted")
        right.insert(4, True)
    table = render_table(headers, rows, right)
    if len(rows) > 1:
        table.insert(-1, table[1])  # rule above the Aggregated row
    return table


def phase_lines(report: dict[str, Any]) -> list[str]:
    """Where the time went: per endpoint, p50/p95 of DNS, connect, TLS, time to first byte and body
    (a setup phase shows how many requests paid it: the ones that opened a connection)."""
    totals = report.get("totals") or {}
    if not totals.get("phases_ms"):
        return []
    rows = []
    shown, _ = busiest(report.get("endpoints") or [])
    for src, method, name in [*((e, e.get("method", ""), e.get("name", "")) for e in shown
                                if e.get("phases_ms")), (totals, "", "Aggregated")]:
        phases = src.get("phases_ms") or {}
        requests = number_or_zero(src.get("requests"))
        rows.append([clean_text(method, 10), clean_text(name, MAX_NAME_CELLS),
                     *(phase_cell(phases.get(key), requests) for key, _ in PHASE_NAMES)])
    headers = ("Method", "Name", *(f"{label} p50/p95 ms" for _, label in PHASE_NAMES))
    table = render_table(headers, rows, (False, False, True, True, True, True, True))
    if len(rows) > 1:
        table.insert(-1, table[1])
    return ["", rule("Where the time went"), *table]


def header_lines(report: dict[str, Any]) -> list[str]:
    """Title, duration and users, then the request totals."""
    totals = report.get("totals") or {}
    users = report.get("users") or {}
    lines = [f"loadgen summary ({report.get('schema', 'loadgen.report/1')})"]
    started = report.get("started_at")
    when = f"started {started}, " if started else ""
    lines.append(
        f"{when}duration {fmt_duration(report.get('duration_s'))}, "
        f"users {fmt_count(users.get('peak', 0))} peak / {fmt_count(users.get('target', 0))} target"
    )
    reqs, fails = totals.get("requests", 0), totals.get("failures", 0)
    lines.append(
        f"requests {fmt_count(reqs)}, failures {fmt_count(fails)} ({fmt_pct(fails, reqs)}), "
        f"dropped {fmt_count(totals.get('dropped', 0))}, {fmt_rate(totals.get('rps', 0.0))} req/s, "
        f"received {fmt_bytes(totals.get('bytes_received', 0))}"
    )
    rate = rate_line(report)
    if rate:
        lines.append(rate)
    cut = number_or_zero(totals.get("interrupted"))
    if cut:
        lines.append(f"interrupted {fmt_count(cut)}: cut off before they finished (a forced stop, --stop-timeout); "
                     "neither successes nor failures, and not in the latencies")
    if not reqs:
        lines.append("no requests were completed")
    return lines


def rate_line(report: dict[str, Any]) -> str:
    """Task starts asked for and delivered, when some were missed or dropped (or the model is open)."""
    totals = report.get("totals") or {}
    duration = number_or_zero(report.get("duration_s")) or 1e-9
    iterations = number_or_zero(totals.get("iterations"))
    missed, dropped = number_or_zero(totals.get("missed")), number_or_zero(totals.get("dropped"))
    arrival = number_or_zero((report.get("options") or {}).get("arrival_rate"))
    if not (missed or dropped or arrival):
        return ""
    target = (iterations + missed + dropped) / duration
    lost = f"{fmt_count(missed)} starts missed" if missed else f"{fmt_count(dropped)} iterations dropped"
    return (f"task starts: target {fmt_rate(target)}/s, achieved {fmt_rate(iterations / duration)}/s; {lost}"
            + (f" (arrival rate {fmt_rate(arrival)}/s)" if arrival else ""))


def latency_lines(totals: dict[str, Any]) -> list[str]:
    """One line each for the overall latency and service-time percentiles (none without requests)."""
    out: list[str] = []
    if not totals.get("requests"):
        return out
    for key, label in (("latency_ms", "latency"), ("service_ms", "service time")):
        lat = totals.get(key)
        if not lat:
            continue
        parts = ", ".join(f"{k} {fmt_ms(lat.get(k))}" for k in LATENCY_KEYS if k in lat)
        out.append(f"{label} ms: {parts}")
    return out


def _error_cell(error: dict[str, Any]) -> str:
    """An error's message; the "other errors" row with its first example."""
    samples = error.get("samples")
    if samples:
        return f"{error.get('error', '')}, e.g. {samples[0]}"
    return str(error.get("error", ""))


def error_lines(errors: list[dict[str, Any]]) -> list[str]:
    """The most frequent errors as a table; the rest summed up in one line."""
    if not errors:
        return []
    ranked = sorted(errors, key=lambda e: -number_or_zero(e.get("count")))
    shown, rest = ranked[:MAX_ERRORS], ranked[MAX_ERRORS:]
    rows = [
        [
            fmt_count(e.get("count", 0)),
            clean_text(e.get("method", ""), 10),
            clean_text(e.get("name", ""), MAX_NAME_CELLS),
            clean_text(_error_cell(e), MAX_ERROR_CELLS),
        ]
        for e in shown
    ]
    lines = [
        "",
        rule(f"Errors ({fmt_count(len(errors))})"),
        *render_table(("Count", "Method", "Name", "Error"), rows, (True, False, False, False)),
    ]
    if rest:
        hidden = sum(number_or_zero(e.get("count")) for e in rest)
        lines.append(f"… {len(rest):,} more ({fmt_count(hidden)} occurrences)")
    return lines


def format_connections(conn: dict[str, Any]) -> str:
    """The one-line connection summary."""
    full = conn.get("tls_full", conn.get("tls_handshakes", 0))
    return (
        f"Connections: opened {fmt_count(conn.get('opened', 0))}, closed {fmt_count(conn.get('closed', 0))}"
        f" | TLS full/resumed {fmt_count(full)}/{fmt_count(conn.get('tls_resumed', 0))}"
        f" | DNS lookups/hits {fmt_count(conn.get('dns_lookups', 0))}/{fmt_count(conn.get('dns_hits', 0))}"
        f" | {fmt_rate(conn.get('requests_per_connection', 0.0))} requests/connection"
        f" | retried {fmt_count(conn.get('retries', 0))}, idle closed by server"
        f" {fmt_count(conn.get('idle_dropped', 0))}, address fallbacks {fmt_count(conn.get('connect_fallbacks', 0))}"
    )


def worker_lines(workers: list[dict[str, Any]]) -> list[str]:
    """One table row per worker of a distributed run (nothing for a local run)."""
    if not workers:
        return []
    rows = [
        [
            clean_text(w.get("id", ""), 40),
            clean_text(w.get("host", ""), 40),
            clean_text(w.get("state", ""), 16),
            fmt_count(w.get("users", 0)),
            fmt_count(w.get("requests", 0)),
            fmt_float(w.get("cpu_percent")),
            fmt_float(w.get("rss_mb")),
        ]
        for w in workers
    ]
    headers = ("Worker", "Host", "State", "Users", "Reqs", "CPU %", "RSS MB")
    return [
        "",
        rule(f"Workers ({len(workers)})"),
        *render_table(headers, rows, (False, False, False, True, True, True, True)),
    ]


def threshold_lines(thresholds: list[dict[str, Any]]) -> list[str]:
    """PASS/FAIL per threshold with its observed value, then the tally."""
    if not thresholds:
        return []
    lines = ["", rule("Thresholds")]
    rows = [
        [
            "PASS" if t.get("pass") else "FAIL",
            clean_text(t.get("expression", ""), 80),
            f"observed {fmt_observed(t.get('observed'))}",
        ]
        for t in thresholds
    ]
    lines += render_table(("Result", "Expression", "Observed"), rows, (False, False, False), indent="  ")[2:]
    failed = sum(1 for t in thresholds if not t.get("pass"))
    lines.append(f"  {len(thresholds) - failed} passed, {failed} failed")
    return lines


def event_lines(events: list[dict[str, Any]]) -> list[str]:
    """Fleet events with their intervals: losses, fences, rejoins, a master that stalled."""
    if not events:
        return []
    lines = ["", rule(f"Fleet events ({len(events)})")]
    for event in events[:50]:
        until = event.get("until")
        span = f"{event.get('t', 0):.1f} s" if until is None or until == event.get("t") \
            else f"{event.get('t', 0):.1f}-{until:.1f} s"
        lines.append(f"  {span:>15}  {event.get('kind', ''):<14} {event.get('worker', '')}  "
                     f"{event.get('users', 0)} users")
    if len(events) > 50:
        lines.append(f"  ... and {len(events) - 50} more (the JSON report has them all)")
    return lines


def format_summary(report: dict[str, Any]) -> str:
    """Render the final run summary as aligned plain text (no colour codes)."""
    totals = report.get("totals") or {}
    lines = header_lines(report) + latency_lines(totals)

    lines += ["", rule("Endpoints"), *endpoint_table(report)]
    lines += phase_lines(report)

    lines += error_lines(report.get("errors") or [])
    lines += ["", format_connections(report.get("connections") or {})]
    lines += worker_lines(report.get("workers") or [])
    lines += event_lines(report.get("events") or [])
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["", rule(f"Warnings ({len(warnings)})"), *(f"  ! {warning_text(w)}" for w in warnings)]
    lines += threshold_lines(report.get("thresholds") or [])
    return "\n".join(lines) + "\n"
