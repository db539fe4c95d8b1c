"""A machine's children seen as one test environment, so the machine's worker runs them with the same
``Worker`` and ``Assignment`` as one process runs its users: the runner splits the machine's share over
the children, the lease reaches them through the hub, and ``flush`` hands over their merged numbers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import gevent

from loadgen.engine.placement import Placement
from loadgen.fleet.hub import Hub
from loadgen.fleet.protocol import Custom, Rate, Start, Target
from loadgen.model.dispatch import assign, split_by_weight, split_rate
from loadgen.model.errors import ScriptError
from loadgen.model.notices import Notice
from loadgen.model.options import TestOptions
from loadgen.stats.recorder import StatsDelta

START_TIMEOUT = 60.0  # as the master's: every child answers its Start within this


class GroupRunner:
    """The machine's users or rate, split over its running children (each one process, slot i of N)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.placement = Placement()
        self._counts: dict[str, int] | None = None
        self._spawn_rate = 1.0
        self._handover = 0.0
        self._rate: tuple[float, int, int] | None = None
        self._assigned: dict[str, dict[str, int]] = {}
        hub.on_change = self.split

    @property
    def user_count(self) -> int:
        return sum(child.users for child in self.hub.running())

    def set_target(self, counts: Mapping[str, int], spawn_rate: float, handover: float = 0.0) -> None:
        self._counts, self._spawn_rate, self._handover = dict(counts), spawn_rate, handover
        self.split()

    def set_rate(self, rate: float, max_users: int, pre_allocate: int = 0) -> None:
        self._rate = (rate, max_users, pre_allocate)
        self.split()

    def realign(self) -> None:
        self.split()

    def split(self) -> None:
        children = self.hub.running()
        if not children or self.hub.start is None:
            return
        ids = [c.id for c in children]
        slots = max(self.placement.slots, self.placement.slot + len(children))  # the machine's slots in the fleet
        test_id = self.hub.start.test_id
        if self._rate is not None:
            rate, max_users, pre = self._rate
            rates = split_rate(rate, ids)
            equal = dict.fromkeys(ids, 1.0)
            pools, pres = split_by_weight(max_users, equal), split_by_weight(pre, equal)
            for index, child in enumerate(children):
                self.hub.tell(child, Rate(test_id=test_id, rate=rates[child.id], max_users=max(1, pools[child.id]),
                                          pre_allocate=pres[child.id], slot=self.placement.slot + index,
                                          slots=slots))
            return
        if self._counts is None:
            return
        previous = self._assigned
        per_child = assign(ids, self._counts, previous)
        self._assigned = per_child
        total = max(1, sum(self._counts.values()))
        handover = self._handover
        for child_id, counts in per_child.items():  # a process (re)joined: its siblings hand users over
            gain = sum(counts.values()) - sum(previous.get(child_id, {}).values())
            if previous and gain > 0:
                rate = max(self._spawn_rate * sum(counts.values()) / total, 0.01)
                handover = max(handover, gain / rate)
        for index, child in enumerate(children):
            share = sum(per_child[child.id].values())
            self.hub.tell(child, Target(test_id=test_id, counts=per_child[child.id],
                                        spawn_rate=max(self._spawn_rate * share / total, 0.01),
                                        slot=self.placement.slot + index, slots=slots,
                                        handover=handover))

    def suspend(self) -> None:
        self.hub.fence_now()

    def resume(self) -> None:
        self.hub.suspended = False
        self.hub.regrant()

    def lease_renewed(self) -> None:
        self.hub.regrant()

    def force_stop(self) -> None:
        self.hub.stop_children(0.0)


class GroupMonitor:
    """The machine's CPU (its busiest process: any saturated one skews its numbers) and memory (all of them)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    @property
    def cpu_percent(self) -> float:
        return max((c.cpu for c in self.hub.running()), default=0.0)

    @property
    def rss_mb(self) -> float:
        return sum(c.rss for c in self.hub.running())


class _NoRecorder:
    def flush(self) -> None:
        """The children count from their own start."""


class GroupEnvironment:
    """What ``Assignment`` and ``Worker`` use of an ``Environment``, for a machine's children."""

    def __init__(self, hub: Hub, options: TestOptions) -> None:
        self.hub = hub
        self.options = options
        self.runner = GroupRunner(hub)
        self.monitor = GroupMonitor(hub)
        self.recorder = _NoRecorder()

    def forward(self, message: Custom) -> None:
        """A script's own message from the master: each process's handler gets it."""
        self.hub.forward(message)

    def flush(self) -> StatsDelta:
        delta = self.hub.take()
        delta.users = self.runner.user_count
        delta.cpu_percent = self.monitor.cpu_percent
        delta.rss_mb = self.monitor.rss_mb
        delta.t = time.time()
        return delta.seal()

    def check(self, label: str = "this machine") -> list[Notice]:
        return []  # the children's own warnings go to the master as they come

    def stop(self, timeout: float) -> None:
        """Stop every child and wait for each one's final numbers (or its loss)."""
        self.hub.stop_children(timeout)
        deadline = time.monotonic() + timeout + 5.0
        while self.hub.waiting() and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def close(self) -> None:
        """The children stay for the next test; the hub closes with the machine's worker."""


class GroupPreparation:
    """Starts the master's test on every child, for ``Worker``: the machine is ready when they all answered."""

    def __init__(self, hub: Hub, master_time: Callable[[float], float]) -> None:
        self.hub = hub
        hub.master_time = master_time

    def environment(self, message: Start, warn: Callable[[str, str, str], None]) -> GroupEnvironment:
        options = TestOptions.from_dict(message.options)
        self.hub.begin(message)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            live = [c for c in self.hub.children.values() if not c.lost]
            if live and all(c.started or c.failed for c in live):
                break
            gevent.sleep(0.05)
        failed = [c for c in self.hub.children.values() if c.failed]
        for child in failed:
            warn("worker", f"process {child.id} could not start the test: {child.failed[:500]}", f"failed:{child.id}")
        if not self.hub.running():
            detail = failed[0].failed if failed else "no process of this machine answered in time"
            raise ScriptError(detail)
        return GroupEnvironment(self.hub, options)

    def clean(self) -> None:
        """The children forget their shipped script themselves."""
