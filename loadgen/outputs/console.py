"""Console output: the final plain-text summary, the live status line and a rich live view on TTYs."""

from __future__ import annotations

import math
import sys
import time
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

from rich.cells import cell_len

MAX_ERRORS = 20
MAX_NAME_CELLS = 60
MAX_ERROR_CELLS = 120
_BAR = 56  # width of section rules


# --------------------------------------------------------------------------- number formatting


def _num(value: Any) -> float | None:
    """``value`` as a finite float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt_ms(value: Any) -> str:
    """Milliseconds: 2 decimals below 10, integers (thousands separated) from 10 up; ``-`` if missing."""
    v = _num(value)
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 9.995 else f"{v:,.0f}"


def fmt_count(value: Any) -> str:
    """An integer count with thousands separators."""
    v = _num(value)
    return "-" if v is None else f"{round(v):,}"


def fmt_rate(value: Any) -> str:
    """Requests per second: 1 decimal, thousands separated."""
    v = _num(value)
    return "-" if v is None else f"{v:,.1f}"


def fmt_pct(part: Any, whole: Any) -> str:
    """``part`` as a percentage of ``whole`` (0% when ``whole`` is zero)."""
    p, w = _num(part) or 0.0, _num(whole) or 0.0
    pct = 100.0 * p / w if w > 0 else 0.0
    return f"{pct:.2f}%" if pct < 10 else f"{pct:.1f}%"


def fmt_bytes(value: Any) -> str:
    """Byte count in binary units (``1.5 MiB``)."""
    v = _num(value) or 0.0
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(v) < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    raise AssertionError("unreachable")


def fmt_duration(seconds: Any) -> str:
    """``12.3s`` below a minute, else ``4m05s`` / ``1h02m03s``."""
    s = _num(seconds) or 0.0
    if s < 60:
        return f"{s:.1f}s"
    total = round(s)
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def fmt_clock(seconds: Any) -> str:
    """Elapsed time as ``MM:SS`` or ``H:MM:SS``."""
    total = max(0, int(_num(seconds) or 0.0))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _fmt_observed(value: Any) -> str:
    v = _num(value)
    return "-" if v is None else f"{v:.4g}"


# --------------------------------------------------------------------------- text helpers


def clean_text(value: Any, max_cells: int | None = None) -> str:
    """One printable line: control characters (newlines, ANSI escapes) neutralised, optionally clipped."""
    out = []
    for ch in str(value if value is not None else ""):
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200d":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out)
    if max_cells is not None and cell_len(text) > max_cells:
        clipped, width = [], 0
        for ch in text:
            w = cell_len(ch)
            if width + w > max_cells - 1:
                break
            clipped.append(ch)
            width += w
        text = "".join(clipped) + "…"
    return text


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - cell_len(text))
    return gap + text if right else text + gap


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool], indent: str = ""
) -> list[str]:
    """Align ``rows`` under ``headers`` (two-space gutters, display-width aware); returns the lines."""
    widths = [cell_len(h) for h in headers]
    for row in rows:
        widths = [max(w, cell_len(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        return (indent + "  ".join(_pad(c, w, r) for c, w, r in zip(cells, widths, right))).rstrip()

    return [line(headers), indent + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _rule(title: str) -> str:
    return f"--- {title} " + "-" * max(3, _BAR - len(title) - 5)


# --------------------------------------------------------------------------- final summary

_ENDPOINT_HEADERS = ("Method", "Name", "Reqs", "Fails", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
_ENDPOINT_RIGHT = (False, False, True, True, True, True, True, True, True)


def _endpoint_row(method: Any, name: Any, src: dict) -> list[str]:
    reqs, fails = src.get("requests", 0), src.get("failures", 0)
    lat = (src.get("latency_ms") or {}) if reqs else {}
    return [
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


def _header_lines(report: dict) -> list[str]:
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
    if not reqs:
        lines.append("no requests were completed")
    return lines


def _latency_lines(totals: dict) -> list[str]:
    out: list[str] = []
    if not totals.get("requests"):
        return out
    for key, label in (("latency_ms", "latency"), ("service_ms", "service time")):
        lat = totals.get(key)
        if not lat:
            continue
        parts = ", ".join(
            f"{k} {fmt_ms(lat.get(k))}"
            for k in ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
            if k in lat
        )
        out.append(f"{label} ms: {parts}")
    return out


def _error_lines(errors: list[dict]) -> list[str]:
    if not errors:
        return []
    ranked = sorted(errors, key=lambda e: -(_num(e.get("count")) or 0))
    shown, rest = ranked[:MAX_ERRORS], ranked[MAX_ERRORS:]
    rows = [
        [
            fmt_count(e.get("count", 0)),
            clean_text(e.get("method", ""), 10),
            clean_text(e.get("name", ""), MAX_NAME_CELLS),
            clean_text(e.get("error", ""), MAX_ERROR_CELLS),
        ]
        for e in shown
    ]
    lines = [
        "",
        _rule(f"Errors ({fmt_count(len(errors))})"),
        *render_table(("Count", "Method", "Name", "Error"), rows, (True, False, False, False)),
    ]
    if rest:
        hidden = sum(_num(e.get("count")) or 0 for e in rest)
        lines.append(f"… {len(rest):,} more ({fmt_count(hidden)} occurrences)")
    return lines


def format_connections(conn: dict) -> str:
    """The one-line connection summary."""
    full = conn.get("tls_full", conn.get("tls_handshakes", 0))
    return (
        f"Connections: opened {fmt_count(conn.get('opened', 0))}, closed {fmt_count(conn.get('closed', 0))}"
        f" | TLS full/resumed {fmt_count(full)}/{fmt_count(conn.get('tls_resumed', 0))}"
        f" | DNS lookups/hits {fmt_count(conn.get('dns_lookups', 0))}/{fmt_count(conn.get('dns_hits', 0))}"
        f" | {fmt_rate(conn.get('requests_per_connection', 0.0))} requests/connection"
    )


def _worker_lines(workers: list[dict]) -> list[str]:
    if not workers:
        return []
    rows = [
        [
            clean_text(w.get("id", ""), 40),
            clean_text(w.get("host", ""), 40),
            clean_text(w.get("state", ""), 16),
            fmt_count(w.get("users", 0)),
            fmt_count(w.get("requests", 0)),
            fmt_rate(w.get("cpu_percent")),
            fmt_rate(w.get("rss_mb")),
        ]
        for w in workers
    ]
    headers = ("Worker", "Host", "State", "Users", "Reqs", "CPU %", "RSS MB")
    return [
        "",
        _rule(f"Workers ({len(workers)})"),
        *render_table(headers, rows, (False, False, False, True, True, True, True)),
    ]


def _warning_text(w: Any) -> str:
    if isinstance(w, dict):
        kind = w.get("kind")
        msg = clean_text(w.get("message", ""), 200)
        return f"[{clean_text(kind, 30)}] {msg}" if kind else msg
    return clean_text(w, 200)


def _threshold_lines(thresholds: list[dict]) -> list[str]:
    if not thresholds:
        return []
    lines = ["", _rule("Thresholds")]
    rows = [
        [
            "PASS" if t.get("pass") else "FAIL",
            clean_text(t.get("expression", ""), 80),
            f"observed {_fmt_observed(t.get('observed'))}",
        ]
        for t in thresholds
    ]
    lines += render_table(("Result", "Expression", "Observed"), rows, (False, False, False), indent="  ")[2:]
    failed = sum(1 for t in thresholds if not t.get("pass"))
    lines.append(f"  {len(thresholds) - failed} passed, {failed} failed")
    return lines


def format_summary(report: dict) -> str:
    """Render the final run summary as aligned plain text (no colour codes)."""
    totals = report.get("totals") or {}
    lines = _header_lines(report) + _latency_lines(totals)

    rows = [_endpoint_row(e.get("method", ""), e.get("name", ""), e) for e in report.get("endpoints") or []]
    rows.append(_endpoint_row("", "Aggregated", totals))
    table = render_table(_ENDPOINT_HEADERS, rows, _ENDPOINT_RIGHT)
    if len(rows) > 1:
        table.insert(-1, table[1])  # rule above the Aggregated row
    lines += ["", _rule("Endpoints"), *table]

    lines += _error_lines(report.get("errors") or [])
    lines += ["", format_connections(report.get("connections") or {})]
    lines += _worker_lines(report.get("workers") or [])
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["", _rule(f"Warnings ({len(warnings)})"), *(f"  ! {_warning_text(w)}" for w in warnings)]
    lines += _threshold_lines(report.get("thresholds") or [])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- live output


def format_live_line(snapshot: dict) -> str:
    """One status line for a live snapshot: elapsed, users, requests, req/s, failures, last-second percentiles."""
    cur = snapshot.get("current") or {}
    elapsed = fmt_clock(snapshot.get("elapsed", 0))
    run_time = _num(snapshot.get("run_time"))
    if run_time:
        elapsed += f"/{fmt_clock(run_time)}"
    reqs, fails = snapshot.get("requests", 0), snapshot.get("failures", 0)
    return (
        f"[{elapsed}] users {fmt_count(snapshot.get('users', 0))} | reqs {fmt_count(reqs)}"
        f" | {fmt_rate(snapshot.get('rps', 0.0))} req/s | fails {fmt_count(fails)} ({fmt_pct(fails, reqs)})"
        f" | p50/p95/p99 {fmt_ms(cur.get('p50_ms'))}/{fmt_ms(cur.get('p95_ms'))}/{fmt_ms(cur.get('p99_ms'))} ms"
    )


class ConsoleOutput:
    """Prints live progress and the final summary.

    On a TTY (or ``live=True``) a rich live view is redrawn each snapshot; otherwise a plain status line is
    printed every ``interval`` seconds of run time. ``quiet`` suppresses live output but not the summary.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float = 2.0,
        quiet: bool = False,
        live: bool | None = None,
        warn_stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.warn_stream = warn_stream  # plain mode prints each new warning here at once (default stderr)
        self.interval = interval
        self.quiet = quiet
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live and not quiet
        self._last_print: float | None = None
        self._errors: dict[tuple[str, str, str], int] = {}
        self._warnings_shown = 0  # plain mode: warnings already printed (the snapshot lists them all)
        self._live: Any = None  # rich.live.Live, created on the first snapshot

    # -- plain
    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def on_snapshot(self, snapshot: dict) -> None:
        """Handle one live snapshot (called about once a second)."""
        if self.quiet:
            return
        for err in snapshot.get("new_errors") or []:
            key = (str(err.get("method", "")), str(err.get("name", "")), str(err.get("error", "")))
            self._errors[key] = self._errors.get(key, 0) + int(_num(err.get("count")) or 0)
        if self.live:
            try:
                self._update_live(snapshot)
                return
            except Exception:  # a broken terminal must never stop the run: fall back to plain lines
                self.live = False
                self._live = None
        warnings = snapshot.get("warnings") or []
        if len(warnings) > self._warnings_shown:
            text = "".join(f"loadgen: warning: {_warning_text(w)}\n" for w in warnings[self._warnings_shown:])
            self._warnings_shown = len(warnings)
            stream = self.warn_stream or sys.stderr
            stream.write(text)
            stream.flush()
        now = _num(snapshot.get("elapsed"))
        if now is None:
            now = time.monotonic()
        if (
            self._last_print is None
            or now - self._last_print >= self.interval - 1e-6
            or now < self._last_print
        ):
            self._last_print = now
            self._write(format_live_line(snapshot) + "\n")

    def on_report(self, report: dict) -> None:
        """Stop any live view and print the final summary."""
        self.close()
        self._write("\n" + format_summary(report))

    def close(self) -> None:
        """Stop the live view (idempotent)."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def __enter__(self) -> ConsoleOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rich
    def _update_live(self, snapshot: dict) -> None:
        from rich.console import Console
        from rich.live import Live

        if self._live is None:
            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._live = Live(console=console, auto_refresh=False, transient=True)
            self._live.start()
        self._live.update(self._renderable(snapshot), refresh=True)

    def _renderable(self, snapshot: dict) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        parts: list[Any] = [Text(format_live_line(snapshot))]
        run_time, elapsed = _num(snapshot.get("run_time")), _num(snapshot.get("elapsed")) or 0.0
        if run_time:
            done = min(elapsed, run_time)
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                ProgressBar(total=run_time, completed=done, width=40),
                Text(f"{100 * done / run_time:.0f}%  {fmt_clock(run_time - done)} left"),
            )
            parts.append(bar)
        target = _num(snapshot.get("target_users"))
        if target:
            parts.append(Text(f"ramp: {fmt_count(snapshot.get('users', 0))}/{fmt_count(target)} users"))

        endpoints = sorted(snapshot.get("endpoints") or [], key=lambda e: -(_num(e.get("requests")) or 0))
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col, right in zip(
            ("Method", "Name", "Reqs", "Fails", "req/s", "p95 ms"), (False, False, True, True, True, True)
        ):
            table.add_column(col, justify="right" if right else "left")
        for e in endpoints[:15]:
            table.add_row(
                clean_text(e.get("method", ""), 10),
                clean_text(e.get("name", ""), MAX_NAME_CELLS),
                fmt_count(e.get("requests", 0)),
                fmt_count(e.get("failures", 0)),
                fmt_rate(e.get("rps", 0.0)),
                fmt_ms(e.get("p95_ms")),
            )
        if len(endpoints) > 15:
            table.add_row("", f"… {len(endpoints) - 15} more", "", "", "", "")
        parts.append(table)

        if self._errors:
            top = sorted(self._errors.items(), key=lambda kv: -kv[1])[:5]
            parts.append(Text("errors:"))
            parts += [
                Text(f"  {fmt_count(n)}  {clean_text(m, 10)} {clean_text(nm, 40)}: {clean_text(err, 80)}")
                for (m, nm, err), n in top
            ]
        warnings = snapshot.get("warnings") or []
        parts += [Text(f"! {_warning_text(w)}") for w in warnings[-5:]]
        return Group(*parts)
