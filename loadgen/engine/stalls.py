"""Never silently stuck: users whose task has not returned for ``--stall-timeout``, and a whole test where
nothing completes any more. ``Environment.check()`` calls ``StallWatch.check()`` once a second.

Each user's greenlet (in the runner's record of it) is suspended where the user waits; its
``gr_frame`` chain tells where: the script's own frames and the innermost library frame are shown.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any, Protocol

from loadgen.model.notices import Notice

MAX_USER_REPORTS = 10  # per process and test: past this, one summary line instead of a line per user
MAX_FRAMES = 200  # a bound on walking a frame chain



def _library_roots() -> tuple[tuple[str, str], ...]:
    """(directory, display prefix) pairs of code that is not the user's script."""
    roots: dict[str, str] = {}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots[os.path.realpath(path)] = ""
    for module_name in ("loadgen", "gevent"):
        module = sys.modules.get(module_name)
        file = getattr(module, "__file__", None)
        if file:
            package_dir = os.path.dirname(os.path.realpath(file))
            roots[package_dir] = os.path.basename(package_dir) + "/"
    for path in sys.path:
        if path and ("site-packages" in path or "dist-packages" in path) and os.path.isdir(path):
            roots.setdefault(os.path.realpath(path), "")
    # longest first so that loadgen/ inside site-packages keeps its own prefix
    return tuple(sorted(roots.items(), key=lambda item: -len(item[0])))


_ROOTS: tuple[tuple[str, str], ...] | None = None
_CLASSIFIED: dict[str, str | None] = {}


def library_path(filename: str) -> str | None:
    """The short display path of a library file (stdlib, site-packages, loadgen, gevent), else None."""
    global _ROOTS
    cached = _CLASSIFIED.get(filename, "")
    if cached != "":
        return cached
    if _ROOTS is None:
        _ROOTS = _library_roots()
    result: str | None = None
    if filename.startswith("<"):  # <frozen runpy>, <string>: not the user's file
        result = filename.strip("<>")
    else:
        real = os.path.realpath(filename)
        for root, prefix in _ROOTS:
            if real.startswith(root + os.sep):
                result = prefix + os.path.relpath(real, root)
                break
    if len(_CLASSIFIED) < 10000:
        _CLASSIFIED[filename] = result
    return result


def walk(frame: FrameType | None) -> list[FrameType]:
    """The frame chain ending at ``frame``, outermost first."""
    frames: list[FrameType] = []
    while frame is not None and len(frames) < MAX_FRAMES:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return frames


def _fmt(frame: FrameType, path: str) -> str:
    return f"{path}:{frame.f_lineno} {frame.f_code.co_name}"


class Where:
    """Where a stack waits: the script's frames, the innermost library frame, the gevent primitive."""

    __slots__ = ("script", "library", "primitive")

    def __init__(self, frames: Iterable[FrameType]) -> None:
        self.script: list[str] = []
        self.library: str | None = None
        self.primitive: str | None = None
        for frame in frames:
            filename = frame.f_code.co_filename
            path = library_path(filename)
            if path is None:
                self.script.append(_fmt(frame, os.path.basename(filename)))
                self.library = None
                self.primitive = None
            elif path.startswith("gevent/"):
                self.primitive = frame.f_code.co_name
            else:
                self.library = _fmt(frame, path)
                self.primitive = None

    @property
    def innermost(self) -> str:
        """The innermost script frame (what users are grouped by), else the innermost library frame."""
        if self.script:
            return self.script[-1]
        return self.library or "unknown"

    def __str__(self) -> str:
        parts = list(self.script[-4:])
        if len(self.script) > 4:
            parts.insert(0, "…")
        if self.library:
            parts.append(self.library)
        if self.primitive:
            parts.append(f"gevent {self.primitive}")
        return " → ".join(parts) if parts else "no Python frame (running or finished)"


def where_greenlet(greenlet: Any) -> Where | None:
    """Where a suspended greenlet waits; None when it has no frame (running, dead, never started)."""
    frame = getattr(greenlet, "gr_frame", None)
    if frame is None:
        return None
    return Where(walk(frame))


def where_frame(frame: FrameType | None) -> Where:
    return Where(walk(frame))


class RunningUser(Protocol):
    """The runner's record of a user (``engine.user_calls.UserRecord``): what the watchdog reads."""

    @property
    def user(self) -> object: ...
    @property
    def cls_name(self) -> str: ...
    @property
    def task(self) -> str | None: ...
    @property
    def hook(self) -> str | None: ...
    @property
    def task_started(self) -> float: ...
    @property
    def greenlet(self) -> Any: ...


class StallWatch:
    """Reports users stuck in one task (once per task invocation) and a test that no longer progresses."""

    def __init__(self, running: Callable[[], Sequence[RunningUser]], stall_timeout: float, worker_id: str = "local",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.running = running
        self.stall_timeout = stall_timeout
        self.worker_id = worker_id
        self.clock = clock
        self.last_progress = clock()
        self._reported: set[tuple[int, float]] = set()
        self._user_reports = 0
        self._summary_sent = False
        self._stuck_reported = False

    def progress(self, completed: int) -> None:
        """Requests completed since the last call (from the stats flush)."""
        if completed:
            self.last_progress = self.clock()
            self._stuck_reported = False

    def check(self, label: str = "this process") -> list[Notice]:
        timeout = self.stall_timeout
        if not timeout or timeout <= 0:
            return []
        now = self.clock()
        users = self.running()
        stalled: list[tuple[RunningUser, float]] = []
        for record in users:
            started = record.task_started
            if (record.task is None and record.hook is None) or not started:
                continue
            if now - started >= timeout:
                stalled.append((record, started))
        live = {(id(record.user), started) for record, started in stalled}
        self._reported &= live  # forget invocations that ended: a new stall of the same user is new
        warnings: list[Notice] = []
        where: dict[int, Where | None] = {}
        for record, started in stalled:
            ident = (id(record.user), started)
            if ident in self._reported:
                continue
            self._reported.add(ident)
            if self._user_reports >= MAX_USER_REPORTS:
                if not self._summary_sent:
                    self._summary_sent = True
                    warnings.append(Notice(
                        "stall",
                        f"{label}: more users are stuck in a task for over {timeout:g} s; only the first "
                        f"{MAX_USER_REPORTS} are listed",
                        f"stall-more:{self.worker_id}",
                    ))
                continue
            self._user_reports += 1
            place = where_greenlet(record.greenlet)
            where[id(record.user)] = place
            warnings.append(Notice(
                "stall",
                f"{record.cls_name}.{record.task or record.hook} has not returned for {now - started:.0f} s"
                f"{'' if label == 'this process' else ' on ' + label}: waits at {place or 'an unknown place'}"
                " (give the call a timeout)",
                f"stall:{self.worker_id}:{id(record.user)}:{started}",
            ))
        if (stalled and not self._stuck_reported and now - self.last_progress >= timeout
                and 2 * len(stalled) >= len(users)):
            self._stuck_reported = True
            warnings.append(Notice("stall", self._stuck_message(stalled, users, where, now, label), "stuck"))
        return warnings

    def _stuck_message(self, stalled: list[tuple[RunningUser, float]], users: Sequence[RunningUser],
                       where: dict[int, Where | None],
                       now: float, label: str) -> str:
        groups: Counter[str] = Counter()
        detail: dict[str, str] = {}
        for record, _ in stalled:
            ident = id(record.user)
            place = where[ident] if ident in where else where_greenlet(record.greenlet)
            key = place.innermost if place is not None else "an unknown place"
            groups[key] += 1
            if place is not None and place.library and key not in detail:
                detail[key] = place.library
        top, count = groups.most_common(1)[0]
        inner = f" (in {detail[top]})" if top in detail else ""
        who = "the whole test is stuck" if label == "this process" else f"{label} is stuck"
        return (f"{who}: no request has completed for {now - self.last_progress:.0f} s "
                f"while {len(users)} users run; {count} of {len(stalled)} stuck users wait at {top}{inner}")
