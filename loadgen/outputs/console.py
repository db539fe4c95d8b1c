"""Console output: the live status line, a rich live view on TTYs, and the final summary when the run ends."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from loadgen.outputs.numbers import as_number, fmt_clock, fmt_count, fmt_ms, fmt_pct, fmt_rate, number_or_zero
from loadgen.outputs.summary import format_summary
from loadgen.outputs.text import MAX_NAME_CELLS, clean_text, warning_text


def format_live_line(snapshot: dict[str, Any]) -> str:
    """One status line for a live snapshot: elapsed, users, requests, req/s, failures, last-second percentiles."""
    cur = snapshot.get("current") or {}
    elapsed = fmt_clock(snapshot.get("elapsed", 0))
    run_time = as_number(snapshot.get("run_time"))
    if run_time:
        elapsed += f"/{fmt_clock(run_time)}"
    reqs, fails = snapshot.get("requests", 0), snapshot.get("failures", 0)
    return (
        f"[{elapsed}] users {fmt_count(snapshot.get('users', 0))} | reqs {fmt_count(reqs)}"
        f" | {fmt_rate(snapshot.get('rps', 0.0))} req/s | fails {fmt_count(fails)} ({fmt_pct(fails, reqs)})"
        f" | p50/p95/p99 {fmt_ms(cur.get('p50_ms'))}/{fmt_ms(cur.get('p95_ms'))}/{fmt_ms(cur.get('p99_ms'))} ms"
    )


REPRINTED = frozenset({"blocking"})  # warnings printed again when their counts change (every block counts)
REPRINT_EVERY = 10.0


class ConsoleOutput:
    """Prints live progress and the final summary.

    On a TTY (or ``live=True``) a rich live view is redrawn each snapshot; otherwise a plain status line is
    printed every ``interval`` seconds of run time. ``quiet`` suppresses the live lines, not the warnings (on
    stderr as they appear) or the summary.
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
        self._reprints: dict[int, tuple[float, Any]] = {}  # a repeating warning: when, and what, last printed
        self._live: Any = None  # rich.live.Live, created on the first snapshot

    # -- plain
    def _write(self, text: str) -> None:
        """Write and flush at once (the stream may be a pipe read line by line)."""
        self.stream.write(text)
        self.stream.flush()

    def on_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Handle one live snapshot (called about once a second)."""
        if self.quiet:  # no live lines, but a warning still goes out the moment it appears
            self._print_new_warnings(snapshot)
            return
        for err in snapshot.get("new_errors") or []:
            key = (str(err.get("method", "")), str(err.get("name", "")), str(err.get("error", "")))
            self._errors[key] = self._errors.get(key, 0) + int(number_or_zero(err.get("count")))
        if self.live:
            try:
                self._update_live(snapshot)
                return
            except Exception:  # a broken terminal must never stop the run: fall back to plain lines
                self.live = False
                self._live = None
        self._print_new_warnings(snapshot)
        now = as_number(snapshot.get("elapsed"))
        if now is None:
            now = time.monotonic()
        if (
            self._last_print is None
            or now - self._last_print >= self.interval - 1e-6
            or now < self._last_print
        ):
            self._last_print = now
            self._write(format_live_line(snapshot) + "\n")

    def _print_new_warnings(self, snapshot: dict[str, Any]) -> None:
        """Each new warning at once; a repeating one (``REPRINTED``) again with its new counts, at most every
        ``REPRINT_EVERY`` seconds."""
        warnings = snapshot.get("warnings") or []
        lines = [f"loadgen: warning: {warning_text(w)}\n" for w in warnings[self._warnings_shown:]]
        now = as_number(snapshot.get("elapsed")) or 0.0
        for index, warning in enumerate(warnings):
            if warning.get("kind") not in REPRINTED:
                continue
            message = warning.get("message")
            printed = self._reprints.get(index)
            if printed is None or index >= self._warnings_shown:
                self._reprints[index] = (now, message)
            elif printed[1] != message and now - printed[0] >= REPRINT_EVERY:
                self._reprints[index] = (now, message)
                lines.append(f"loadgen: warning: {warning_text(warning)}\n")
        self._warnings_shown = len(warnings)
        if lines:
            stream = self.warn_stream or sys.stderr
            stream.write("".join(lines))
            stream.flush()

    def on_report(self, report: dict[str, Any]) -> None:
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
    def _update_live(self, snapshot: dict[str, Any]) -> None:
        """Redraw the rich live view (started on the first snapshot)."""
        from rich.console import Console
        from rich.live import Live

        if self._live is None:
            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._live = Live(console=console, auto_refresh=False, transient=True)
            self._live.start()
        self._live.update(self._renderable(snapshot), refresh=True)

    def _renderable(self, snapshot: dict[str, Any]) -> Any:
        """The live view: status line, progress bar, ramp, busiest endpoints, top errors, latest warnings."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        parts: list[Any] = [Text(format_live_line(snapshot))]
        run_time, elapsed = as_number(snapshot.get("run_time")), number_or_zero(snapshot.get("elapsed"))
        if run_time:
            done = min(elapsed, run_time)
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                ProgressBar(total=run_time, completed=done, width=40),
                Text(f"{100 * done / run_time:.0f}%  {fmt_clock(run_time - done)} left"),
            )
            parts.append(bar)
        target = as_number(snapshot.get("target_users"))
        if target:
            parts.append(Text(f"ramp: {fmt_count(snapshot.get('users', 0))}/{fmt_count(target)} users"))

        endpoints = sorted(snapshot.get("endpoints") or [], key=lambda e: -number_or_zero(e.get("requests")))
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
        parts += [Text(f"! {warning_text(w)}") for w in warnings[-5:]]
        return Group(*parts)
