"""``loadgen worker --processes N``: start N worker processes and restart any that crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from loadgen.errors import UsageError

RESTART_DELAY = 1.0


def parse_processes(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--processes {text!r}: give a number >= 1 or 'auto'")
    return int(text)


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


def supervise(count: int, argv: list[str]) -> int:
    """Run ``count`` children; restart crashed ones; exit when all have finished cleanly."""
    command = child_argv(argv)
    env = dict(os.environ, LOADGEN_PROCESSES="1")
    children: dict[int, subprocess.Popen] = {}
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for slot in range(count):
        children[slot] = subprocess.Popen(command, env=env)
    worst = 0
    while children:
        time.sleep(0.2)
        for slot, proc in list(children.items()):
            code = proc.poll()
            if code is None:
                continue
            if code == 0 or stopping or code == 2:
                worst = max(worst, code)
                del children[slot]
                continue
            print(f"loadgen worker: process {proc.pid} exited with {code}; restarting it", file=sys.stderr,
                  flush=True)
            time.sleep(RESTART_DELAY)
            children[slot] = subprocess.Popen(command, env=env)
    return worst
