"""A blocked event loop, seen from a thread that is not the hub: gevent's monitor thread.

While a call that never yields holds the loop, nothing on the loop can run: no live line, no run time, no
Ctrl-C. `LoopGuard` runs on gevent's monitor thread every ``PERIOD``: it says the loop is blocked while it
is, with the stack (once, then after 5, 10, 20... seconds), and once the run should be over (``deadline``)
or after a second signal it calls ``escape``, which writes the report from what was recorded and ends the
process. Signals are counted by a Python-level handler, which the interpreter runs even while the hub is
blocked in a call that returns to Python (``time.sleep``, a CPU-bound loop).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from loadgen.engine.monitor import BlockingMonitor

STACK_FRAMES = 8  # innermost frames of the blocked stack that the live line shows
ESCAPE_AFTER_SIGNALS = 2  # a second Ctrl-C/SIGTERM while blocked ends the process
REPEAT_EVERY = 10.0  # a site that blocks again is said again (with the count) at most this often
EXIT_FORCED = 130  # a process without a report to write (a worker) ends with this status

_signals = [0]  # SIGINT/SIGTERM received by this process (`install_signals`), counted off the loop
_signalled_at = [0.0]  # when the last one came (monotonic)


def install_signals(on_signal: Callable[[int], None]) -> None:
    """SIGINT/SIGTERM: counted at once (a guard reads the count from its thread, even while the loop is
    blocked), then ``on_signal(signum)`` on the loop, as ``gevent.signal_handler`` would call it."""
    import gevent

    loop = gevent.get_hub().loop

    def handler(signum: int, frame: Any) -> None:
        _signals[0] += 1
        _signalled_at[0] = time.monotonic()
        loop.run_callback_threadsafe(on_signal, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


class LoopGuard:
    """Reports a blocked loop as it happens and gets the process out when the loop will not come back."""

    PERIOD = 0.2

    def __init__(self, monitor: BlockingMonitor, label: str = "this process", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.monitor = monitor
        self.label = label
        self.stream = stream
        self.clock = clock
        self.deadline: float | None = None  # on ``clock``: past it, a blocked loop is not waited for
        self.escape: Callable[[str], None] | None = None  # ends the process (writes the report first)
        self.stop_grace: float | None = None  # after a first signal, how long a stop may take (stop timeout + 1 s)
        self._signals_before = _signals[0]  # signals of an earlier test in this process do not count
        self._episode: float | None = None  # the heartbeat a block began after
        self._next_report = 0.0  # seconds into the block of the next live line
        self._escaped = False
        self.blocked_at = ""  # where the current (or last) block waits: script frames first
        self._said: dict[str, tuple[float, int]] = {}  # site → (when its stack was last printed, blocks since)

    @classmethod
    def of(cls, monitor: BlockingMonitor) -> LoopGuard:
        """The monitor's guard, started on gevent's monitor thread once per process, reset for a new test."""
        guard: LoopGuard | None = getattr(monitor, "guard", None)
        if guard is None:
            import gevent

            guard = cls(monitor)
            thread = getattr(gevent.get_hub(), "periodic_monitoring_thread", None)
            if thread is not None:
                thread.add_monitoring_function(guard.check, cls.PERIOD)
            monitor.guard = guard
        guard.deadline = guard.escape = guard.stop_grace = None
        guard._signals_before = _signals[0]
        guard._escaped = False
        return guard

    @property
    def signals(self) -> int:
        return _signals[0] - self._signals_before

    # -- the monitor thread
    def check(self, hub: Any = None) -> None:
        """One look: how long since the loop's last heartbeat; say so, or escape. Never raises: an exception
        here would end gevent's monitor thread, and its own blocking detection with it."""
        try:
            self._check(hub)
        except Exception:  # noqa: BLE001,S110 - nothing to report it on but the thread we must keep alive
            pass

    def _check(self, hub: Any) -> None:
        monitor = self.monitor
        threshold = monitor.threshold
        beat = monitor.last_beat
        blocked = self.clock() - beat - monitor.HEARTBEAT
        if threshold <= 0 or blocked < max(threshold, self.PERIOD):
            self._episode = None
            return
        if self._episode != beat:
            self._episode, self._next_report = beat, 0.0
        if blocked >= self._next_report:
            self._say(blocked, hub)
            self._next_report = max(5.0, 2 * self._next_report)
        if self._escaped:
            return
        now = self.clock()
        if self.signals >= ESCAPE_AFTER_SIGNALS:
            reason = f"forced: a second signal while the event loop was blocked for {blocked:.0f} s"
        elif (self.signals and self.stop_grace is not None and self.escape is not None
              and time.monotonic() > _signalled_at[0] + self.stop_grace):
            reason = (f"forced: the event loop stayed blocked ({blocked:.0f} s) for the whole stop timeout after "
                      "a signal")
        elif self.deadline is not None and now > self.deadline:
            reason = f"forced: the event loop was blocked past the end of the test ({blocked:.0f} s)"
        else:
            return
        if self.escape is None and self.signals < ESCAPE_AFTER_SIGNALS:
            return  # no report to write, and no second signal: the run time is not ours to enforce
        self._escaped = True
        if self.escape is not None:
            self.escape(f"{reason} at {self.blocked_at}")
            return
        try:
            print(f"loadgen: {reason} at {self.blocked_at}: exiting now", file=sys.stderr, flush=True)
        finally:
            os._exit(EXIT_FORCED)

    def _say(self, blocked: float, hub: Any) -> None:
        from loadgen.engine.stalls import where_frame

        ident = getattr(hub, "thread_ident", None)
        frame = sys._current_frames().get(ident) if ident is not None else None
        on = "" if self.label == "this process" else f" on {self.label}"
        if self._next_report == 0.0:  # the block's first line: with its stack, at most once a while per site
            site = self.blocked_at = str(where_frame(frame)) if frame is not None else "an unknown place"
            now = self.clock()
            said_at, unsaid = self._said.get(site, (-REPEAT_EVERY, 0))
            if now - said_at < REPEAT_EVERY:
                self._said[site] = (said_at, unsaid + 1)
                return
            self._said[site] = (now, 0)
            again = f" ({unsaid} more blocks here since the last report)" if unsaid else ""
            stack = traceback.format_stack(frame, limit=STACK_FRAMES) if frame is not None else []
            lines = "".join("    " + line.strip().replace("\n", "\n    ") + "\n" for line in stack)
            text = (f"loadgen: warning: [blocking] the event loop{on} has been blocked for {blocked:.1f} s{again}: every "
                    "user waits, no live numbers until it returns; the run time and a second Ctrl-C still end "
                    f"the test. Blocked at:\n{lines}")
        else:
            text = f"loadgen: warning: [blocking] the event loop{on} is still blocked ({blocked:.0f} s) at " \
                   f"{self.blocked_at}\n"
        stream = self.stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed stream: nothing to say it on
            pass
