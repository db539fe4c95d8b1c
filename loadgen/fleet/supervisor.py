"""``loadgen worker --processes N``: start N worker processes and restart any that crash.

Each child is an independent worker (its own peer of the master). The children run in their own process
group, so a Ctrl-C on the terminal reaches them once, through this parent; on Linux they also get SIGTERM
if this parent dies, so no orphan keeps loading a target.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

from loadgen.model.errors import UsageError

RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_SECONDS = 30.0  # a child that ran this long resets its restart back-off
PR_SET_PDEATHSIG = 1
GROUP_ENV = "LOADGEN_WORKER_GROUP"  # how many processes the supervisor runs: each child says so in its hello
GROUP_ID_ENV = "LOADGEN_WORKER_GROUP_ID"  # the same for every child of one supervisor: the master counts it once


def parse_processes(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--processes {text!r}: give a number >= 1 or 'auto'")
    return int(text)


def group_size() -> int:
    """The size of this worker's process group (1 unless started by ``--processes N``)."""
    text = os.environ.get(GROUP_ENV, "1")
    return max(1, int(text)) if text.isdigit() else 1


def group_id() -> str:
    """The id this worker's machine group goes by ("" for a lone worker: it is its own group)."""
    return os.environ.get(GROUP_ID_ENV, "")[:200]


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
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.delay = RESTART_DELAY
        self.restart_at: float | None = None


def supervise(count: int, argv: list[str]) -> int:
    """Run ``count`` children; restart crashed ones (with back-off); exit when all have finished cleanly."""
    command = child_argv(argv)
    group = f"{socket.gethostname()}-{os.getpid()}"
    env = dict(os.environ, LOADGEN_PROCESSES="1", **{GROUP_ENV: str(count), GROUP_ID_ENV: group})
    slots = [_Slot() for _ in range(count)]
    stopping = False
    prctl = _prctl()  # looked up before any fork: nothing but a system call runs in the child

    def start(slot: _Slot) -> None:
        slot.proc = subprocess.Popen(command, env=env, preexec_fn=lambda: _child_setup(prctl))
        slot.started = time.monotonic()
        slot.restart_at = None

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for slot in slots:
            if slot.proc is not None and slot.proc.poll() is None:
                try:
                    slot.proc.send_signal(signum)
                except OSError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for slot in slots:
        start(slot)
    worst = 0
    live = set(range(count))
    while live:
        time.sleep(0.1)
        now = time.monotonic()
        for index in list(live):
            slot = slots[index]
            if slot.restart_at is not None:
                if stopping:
                    live.discard(index)
                elif now >= slot.restart_at:
                    start(slot)
                continue
            assert slot.proc is not None
            code = slot.proc.poll()
            if code is None:
                continue
            if code == 0 or code == 2 or stopping:
                worst = max(worst, code if code > 0 else 0)
                live.discard(index)
                continue
            if now - slot.started >= STABLE_SECONDS:
                slot.delay = RESTART_DELAY
            print(f"loadgen worker: process {slot.proc.pid} exited with {code}; restarting it in "
                  f"{slot.delay:g} s", file=sys.stderr, flush=True)
            slot.restart_at = now + slot.delay
            slot.delay = min(slot.delay * 2, MAX_RESTART_DELAY)
    return worst
