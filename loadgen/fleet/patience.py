"""How long a worker without ``--stay`` waits for a master that does not answer before it exits."""

from __future__ import annotations

import sys
import time


class Patience:
    def __init__(self, give_up_after: float, stay: bool) -> None:
        self.give_up_after = 0.0 if stay else give_up_after  # 0: never (--stay, or a machine's process)
        self.heard_at = time.monotonic()

    def heard(self) -> float:
        """A frame from the master: the wait starts again. Returns the time."""
        self.heard_at = now = time.monotonic()
        return now

    def over(self, worker_id: str, endpoint: str) -> bool:
        """True (once the line is printed) when no master has answered for ``give_up_after``."""
        silent = time.monotonic() - self.heard_at
        if not self.give_up_after or silent <= self.give_up_after:
            return False
        print(f"loadgen worker {worker_id}: no master has answered at {endpoint} for {silent:.0f} s; exiting "
              "(--give-up-after; --stay waits for a master for good)", file=sys.stderr, flush=True)
        return True
