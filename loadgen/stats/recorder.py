"""The per-process sink of measurements; hands out one ``StatsDelta`` per flush."""

from __future__ import annotations

import time
from typing import Protocol

from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import ErrorTable
from loadgen.stats.histogram import Histogram, Latencies
from loadgen.stats.phases import Phases

MAX_ENDPOINTS = 1000
OTHER_ENDPOINTS = "<other endpoints>"
OVERFLOW_EXAMPLES = 3  # names routed to the other-endpoints row that a delta carries, for the warning
EXCEPTION_METHOD = "EXCEPTION"


class StatsDelta:
    """What one process measured since its previous flush: plain data, mergeable."""

    __slots__ = ("entries", "errors", "counters", "users", "dropped", "missed", "iterations", "cpu_percent",
                 "rss_mb", "t", "total", "processes", "overflowed")

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Entry] = {}
        self.errors = ErrorTable()
        self.counters: dict[str, int] = {}
        self.users = 0
        self.dropped = 0
        self.missed = 0
        self.iterations = 0  # tasks that ran to their end (or raised), measured or not
        self.cpu_percent = 0.0
        self.rss_mb = 0.0
        self.t = 0.0
        self.total: Latencies | None = None  # every entry's latency merged, so a master merges one, not all
        # a machine's merged delta (worker --processes N): each process's own row, id → [requests, failures,
        # users, cpu %, rss MB, lost (0/1)], requests and failures counted since the test began; empty for one
        # process's delta
        self.processes: dict[str, list[float]] = {}
        self.overflowed: list[tuple[str, str]] = []  # a few names routed to the other-endpoints row (examples)

    def absorb(self, other: StatsDelta) -> None:
        """Add ``other`` (a later delta of the same process, or another process of the same machine)."""
        for key, entry in other.entries.items():
            total = self.entries.get(key)
            if total is None:  # of the kind it absorbs (received deltas: `SpanHistogram`)
                total = self.entries[key] = Entry(key[0], key[1], histogram=type(entry.latency))
            total.merge(entry)
        self.errors.merge(other.errors)
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        self.dropped += other.dropped
        self.missed += other.missed
        self.iterations += other.iterations
        if other.total is not None:  # the seconds' latency, which the entries may not carry (stats.cadence)
            if self.total is None:
                self.total = type(other.total)()
            self.total.merge(other.total)
        for process, row in other.processes.items():
            self.processes[process] = list(row)  # running totals: the newer row holds the older
        room = OVERFLOW_EXAMPLES - len(self.overflowed)
        if room > 0 and other.overflowed:
            self.overflowed.extend(other.overflowed[:room])

    def seal(self) -> StatsDelta:
        """Compute ``total`` (once, on the sending side; a merge of sealed deltas has it already)."""
        if self.total is not None:
            return self
        entries = list(self.entries.values())  # a copy: a forced exit seals from another thread
        total: Latencies = Histogram() if not entries else type(entries[0].latency)()
        for entry in entries:
            total.merge(entry.latency)
        self.total = total
        return self

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.entries.values())

    @property
    def failures(self) -> int:
        return sum(e.failures for e in self.entries.values())

    @property
    def interrupted(self) -> int:
        return sum(e.interrupted for e in self.entries.values())


class CounterSource(Protocol):
    """Process-wide counters the recorder diffs into each delta (the client's connection counters)."""

    def snapshot(self) -> dict[str, int]: ...


class Recorder:
    """Collects every request of this process. ``record`` is the hot path: a few integer operations."""

    def __init__(self, open_model: bool = False, counters: CounterSource | None = None) -> None:
        self.open_model = open_model
        self._counters = counters
        self._last_counters: dict[str, int] = counters.snapshot() if counters is not None else {}
        self.users = 0
        self._delta = StatsDelta()
        self._entries = self._delta.entries
        self._known: set[tuple[str, str]] = set()  # endpoint names with their own row, for the whole test

    def pending(self) -> list[Entry]:
        """The rows recorded since the last flush (what a local ``stats.total`` adds to the merged ones)."""
        return list(self._entries.values())

    def record(
        self,
        method: str,
        name: str,
        latency_us: int,
        nbytes: int,
        error: str | None = None,
        queued_us: int = 0,
        ttfb_us: int = -1,
        body_us: int = 0,
        setup: tuple[int, int, int] | None = None,
    ) -> None:
        """Record one finished request (or measured call). An HTTP request gives its phases: time to
        first byte and body (`ttfb_us` >= 0), and, if it opened its connection, `setup` = (DNS, connect,
        TLS) in microseconds (-1 for a phase it did not pay)."""
        entry = self._entries.get((method, name))
        if entry is None:
            entry = self._new_entry(method, name)
        entry.requests += 1
        entry.bytes += nbytes
        if entry.service is not None:
            entry.service.add(latency_us)
            entry.latency.add(latency_us + queued_us)
        else:
            entry.latency.add(latency_us)
        if ttfb_us >= 0:
            phases = entry.phases
            if phases is None:
                phases = entry.phases = Phases()
            phases.add_response(ttfb_us, body_us)
            if setup is not None:
                phases.add_setup(*setup)
        if error is not None:
            entry.failures += 1
            self._delta.errors.add(method, entry.name, error)  # an overflowed name's errors go to its row too

    def record_interrupted(self, method: str, name: str) -> None:
        """A request (or measured block) cut off before it finished: killed at a forced stop or by a fence,
        or ended by a ``gevent.Timeout`` from outside it. Never a success, and no latency sample."""
        entry = self._entries.get((method, name))
        if entry is None:
            entry = self._new_entry(method, name)
        entry.interrupted += 1

    def record_exception(self, where: str, exc: BaseException) -> None:
        """An exception in user code (a task, on_start): an error row, not a request."""
        self._delta.errors.add(EXCEPTION_METHOD, where, f"{type(exc).__name__}: {exc}")

    def record_iteration(self) -> None:
        """A task returned (or raised): counted whether or not it recorded anything."""
        self._delta.iterations += 1

    def record_dropped(self, count: int = 1) -> None:
        """Open model: iterations that could not start on time."""
        self._delta.dropped += count

    def record_missed(self, count: int = 1) -> None:
        """Closed model: pacing slots a user missed because its task ran too long."""
        self._delta.missed += count

    def _new_entry(self, method: str, name: str) -> Entry:
        """The entry of a name first seen in this delta; past ``MAX_ENDPOINTS`` names in the test, the method's
        other-endpoints row (routed here, at record time: no row, no histogram, no merge for each new name)."""
        key = (method, name)
        known = self._known
        if key not in known:
            if len(known) >= MAX_ENDPOINTS:
                delta = self._delta
                if len(delta.overflowed) < OVERFLOW_EXAMPLES:
                    delta.overflowed.append((method, name[:200]))
                entry = self._entries.get((method, OTHER_ENDPOINTS))
                if entry is None:
                    entry = self._entries[(method, OTHER_ENDPOINTS)] = Entry(method, OTHER_ENDPOINTS,
                                                                             with_service=self.open_model)
                return entry
            known.add(key)
        entry = self._entries[key] = Entry(method, name, with_service=self.open_model)
        return entry

    def flush(self) -> StatsDelta:
        """Return everything recorded since the previous flush and start afresh."""
        delta = self._delta
        delta.users = self.users
        delta.t = time.time()
        if self._counters is not None:
            now = self._counters.snapshot()
            last = self._last_counters
            delta.counters = {key: value - last.get(key, 0) for key, value in now.items()}
            self._last_counters = now
        self._delta = StatsDelta()
        self._entries = self._delta.entries
        return delta.seal()
