"""``loadgen worker --processes N``: the N worker processes of one machine, restarted when they crash.

The children connect to their parent's hub (``fleet.hub``), not to the master. They run in their own
process group, so a Ctrl-C on the terminal reaches only the parent, which stops them through the hub; on
Linux they also get SIGTERM if the parent dies, so no orphan keeps loading a target.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from loadgen.model.errors import UsageError

RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_SECONDS = 30.0  # a child that ran this long resets its restart back-off
PR_SET_PDEATHSIG = 1
HUB_ENV = "LOADGEN_WORKER_HUB"  # a child's hub endpoint: set, the worker connects there instead of --master


def parse_processes(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--processes {text!r}: give a number >= 1 or 'auto'")
    return int(text)


def hub_endpoint() -> str | None:
    """The hub a child of ``--processes N`` connects to (None for a worker of its own)."""
    return os.environ.get(HUB_ENV) or None


def child_argv(argv: list[str]) -> list[str]:
    """The same worker command with ``--processes`` removed."""
    result: list[str] = []
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--processes":
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        result.append(arg)
    return [sys.executable, "-m", "loadgen", *result]


def _prctl() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(prctl: object | None) -> None:
    """Runs in the child between fork and exec: own process group, SIGTERM when the parent dies."""
    os.setpgid(0, 0)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # type: ignore[operator]


class _Slot:
    __slots__ = ("proc", "started", "delay", "restart_at")

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.delay = RESTART_DELAY
        self.restart_at: float | None = None


class Children:
    """``count`` copies of a command, restarted when they crash (1 s, doubling up to 30 s); ``check`` does
    one round without blocking, for a caller's loop."""

    def __init__(self, count: int, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.env = env
        self.slots = [_Slot() for _ in range(count)]
        self.live = set(range(count))
        self.stopping = False
        self.worst = 0
        self._prctl = _prctl()  # looked up before any fork: nothing but a system call runs in the child

    def start_all(self) -> None:
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: _Slot) -> None:
        prctl = self._prctl
        slot.proc = subprocess.Popen(self.command, env=self.env, preexec_fn=lambda: _child_setup(prctl))
        slot.started = time.monotonic()
        slot.restart_at = None

    def check(self) -> bool:
        """Restart what crashed; returns whether any child is still running or due to restart."""
        now = time.monotonic()
        for index in list(self.live):
            slot = self.slots[index]
            if slot.restart_at is not None:
                if self.stopping:
                    self.live.discard(index)
                elif now >= slot.restart_at:
                    self._start(slot)
                continue
            assert slot.proc is not None
            code = slot.proc.poll()
            if code is None:
                continue
            if code == 0 or code == 2 or self.stopping:
                self.worst = max(self.worst, code if code > 0 else 0)
                self.live.discard(index)
                continue
            if now - slot.started >= STABLE_SECONDS:
                slot.delay = RESTART_DELAY
            print(f"loadgen worker: process {slot.proc.pid} exited with {code}; restarting it in "
                  f"{slot.delay:g} s", file=sys.stderr, flush=True)
            slot.restart_at = now + slot.delay
            slot.delay = min(slot.delay * 2, MAX_RESTART_DELAY)
        return bool(self.live)

    def signal_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                try:
                    slot.proc.send_signal(signum)
                except OSError:
                    pass

    def pids(self) -> list[int]:
        return [slot.proc.pid for slot in self.slots if slot.proc is not None and slot.proc.poll() is None]
