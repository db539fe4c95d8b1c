"""Notices a test that measures nothing: its users' tasks run, but no request (nor ``measure()`` block) is
recorded.

A naive boto3 script records nothing and would pass. This watch says so while it happens (once tasks have
completed for longer than the stall timeout with nothing recorded) and at the end (nothing recorded at all);
the test then exits ``EXIT_EMPTY`` unless ``--allow-empty``. Users stuck in a task are the stall watchdog's.
Pure: the controller feeds it once a second.
"""

from __future__ import annotations

from loadgen.model.notices import Notice

ADVICE = ("wrap non-HTTP calls (boto3, gRPC, a database driver) in `with self.measure(\"kind\", \"name\"):`; "
          "requests through self.client are recorded on their own")


class RecordingWatch:
    """Seconds in which tasks completed and nothing was recorded; ``blind`` once they outlast ``after``."""

    def __init__(self, after: float) -> None:
        self.after = after  # 0 (--stall-timeout 0): only a test that recorded nothing at all is said to be one
        self.blind = False  # some stretch (or the whole test) ran tasks and recorded nothing
        self._recorded = 0  # requests + interrupted so far, as last seen
        self._quiet_since = 0.0  # when something was last recorded (or the test began)
        self._iterations_then = 0  # tasks completed by then
        self._warned_for: float | None = None

    def observe(self, t: float, iterations: int, recorded: int) -> Notice | None:
        """One second: ``t`` into the test, tasks completed, and what was recorded so far (requests, interrupted
        ones and the script's exceptions: a task that raises has said something)."""
        if recorded != self._recorded:
            self._recorded, self._quiet_since, self._iterations_then = recorded, t, iterations
            return None
        quiet = t - self._quiet_since
        ran = iterations - self._iterations_then
        if self.after <= 0 or quiet < self.after or not ran or self._warned_for == self._quiet_since:
            return None
        self._warned_for = self._quiet_since
        self.blind = True
        if recorded == 0:
            text = f"{ran} tasks have run in {quiet:.0f} s and recorded nothing: {ADVICE}"
        else:
            text = (f"{ran} tasks have run in the last {quiet:.0f} s (since {self._quiet_since:.0f} s into the "
                    f"test) and recorded nothing: {ADVICE}")
        return Notice("recording", text, f"quiet:{self._quiet_since:.0f}")

    def final(self, iterations: int, recorded: int, allow_empty: bool) -> Notice | None:
        """At the end: a test that recorded nothing at all is said to be one."""
        if recorded:
            return None
        self.blind = True
        ran = f" ({iterations} tasks ran)" if iterations else ""
        outcome = "exit status 0 (--allow-empty)" if allow_empty else "exit status 6 (--allow-empty to accept)"
        return Notice("recording", f"nothing was recorded in this test{ran}: {ADVICE}; {outcome}", "empty")
