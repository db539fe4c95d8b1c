"""How often a worker's per-endpoint histograms travel to a large fleet's master.

Every delta carries the second's counts, errors and overall latency (``StatsDelta.total``: the timeline's
percentiles), so every per-second number stays exact and on time. Each endpoint's latency and phase
histograms feed only cumulative figures (the report, the live per-endpoint percentiles); with many hosts the
worker holds them back and sends them merged every few deltas, so the master merges a few histograms per
host per second instead of dozens. Nothing is lost: the held histograms go out with the final delta. A
machine's per-process rows (running totals, so the newest holds the older) travel with them; the machine's
own users, CPU and memory travel every second.
"""

from __future__ import annotations

from loadgen.stats.endpoint import Entry
from loadgen.stats.histogram import Histogram
from loadgen.stats.recorder import StatsDelta

HOSTS_PER_STEP = 250  # one more second between a worker's endpoint histograms per this many hosts
MAX_EVERY = 5  # a fleet of 1,000 hosts and more: every 5 s (Locust's workers: every 3 s, whatever the size)


def histograms_every(hosts: int) -> int:
    """Deltas between a worker's endpoint histograms in a fleet of ``hosts``: 1 below 250, 5 from 1,000."""
    return max(1, min(MAX_EVERY, 1 + hosts // HOSTS_PER_STEP))


class HistogramCadence:
    """Holds each endpoint's histograms back and releases them every ``every`` deltas (and with the final
    one). ``phase`` (0 .. every - 1) spreads the releases of a fleet over the seconds."""

    def __init__(self, every: int = 1, phase: int = 0) -> None:
        self.every = max(1, every)
        self._count = phase % self.every
        self._held: dict[tuple[str, str], Entry] = {}

    def pace(self, delta: StatsDelta, final: bool = False) -> StatsDelta:
        """``delta`` (sealed: its total is the second's latency) as it should travel now."""
        if self.every == 1:
            return delta
        held = self._held
        for key, entry in delta.entries.items():
            kept = held.get(key)
            if kept is None:  # the first second of a cycle: keep its histograms as they are
                kept = held[key] = Entry(key[0], key[1], histogram=type(entry.latency))
                kept.latency, kept.service, kept.phases = entry.latency, entry.service, entry.phases
            else:
                kept.merge(entry)
            entry.latency, entry.service, entry.phases = Histogram(), None, None
        self._count += 1
        if not (final or self._count >= self.every):
            delta.processes = {}  # a machine's per-process rows: running totals, the next ones hold these
        else:
            self._count = 0
            for key, kept in held.items():
                # an endpoint may have no requests this second: then it carries its held histograms only
                entry = delta.entries.get(key) or delta.entries.setdefault(key, Entry(key[0], key[1]))
                entry.latency, entry.service, entry.phases = kept.latency, kept.service, kept.phases
            self._held = {}
        return delta
