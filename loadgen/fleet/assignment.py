"""A worker's part in one test: its users, its numbered deltas, its fence.

The users run only while the lease holds (``fleet.lease``). When it lapses they are stopped at once (the
master is about to give them to others) and the deltas pile up unsent; when it is renewed the users start
again towards the desired state and every delta the master has not acknowledged goes out again.
"""

from __future__ import annotations

import logging
import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import gevent

from loadgen.fleet.lease import Lease, MasterClock
from loadgen.fleet.local_test import LocalTest
from loadgen.fleet.outbox import Outbox
from loadgen.fleet.protocol import REPORT, Custom, Event, Message, Rate, Stats, Target, Warning_
from loadgen.script.events import events
from loadgen.stats.cadence import HistogramCadence
from loadgen.stats.wire import Wire, encode_delta

log = logging.getLogger("loadgen.fleet.assignment")
FENCE_CHECK = 0.05  # seconds between lease checks
CLOCK_REALIGN = 0.002  # a better clock estimate this far off moves the arrival grid


def _merge_backlog(first: Wire, second: Wire) -> Wire:
    """Two unsent deltas as one (a long cut); decoding needs numpy, which a worker loads only then."""
    from loadgen.stats.wire import merge_wire

    return merge_wire(first, second)


class Assignment:
    """One test on this worker, from Start to its final delta."""

    def __init__(self, test_id: str, env: LocalTest, send: Callable[[Message], bool], lease: Lease,
                 clock: MasterClock, label: str, histograms_every: int = 1) -> None:
        self.test_id = test_id
        self.env = env
        self._send = send
        self.lease = lease
        self.clock = clock
        self.label = label
        self.run = uuid.uuid4().hex[:8]  # this run of the test: the master numbers its deltas apart
        self.outbox = Outbox(_merge_backlog)
        self.cadence = HistogramCadence(histograms_every, random.randrange(max(1, histograms_every)))
        self.applied = 0  # the desired-state version running
        self.fenced_since: float | None = None
        self.fenced_users = 0
        self.ended = False
        self.closing = False  # told to stop: a renewed lease no longer restarts the users
        self.granted = False  # the first lease has been granted
        self._last_flush = time.monotonic()
        env.runner.placement.offset = clock.offset
        env.runner.placement.run_until = lease.until
        self._greenlets = [gevent.spawn(self._stats_loop), gevent.spawn(self._fence_loop)]

    def started(self) -> None:
        """The script's test_start listeners, and its custom messages to the master (a machine's children
        fire their own)."""
        hooks = getattr(self.env, "hooks", None)
        if hooks is not None:
            hooks.environment.runner.connect(lambda name, data, client_id: self._send(Custom(name=name, data=data)))
            hooks.test_start()

    def deliver(self, message: Custom) -> None:
        """A custom message from the master: the handler the script registered for its name."""
        forward = getattr(self.env, "forward", None)
        if forward is not None:  # a machine's processes: each has its own handlers
            forward(message)
            return
        hooks = getattr(self.env, "hooks", None)
        if hooks is not None and not hooks.environment.runner.deliver(message.name, message.data, "master"):
            log.warning("custom message %r from the master: no handler registered", message.name[:200])

    def _report_to_master(self) -> None:
        """``report_to_master`` listeners add to a dict sent with each delta (to the master's worker_report)."""
        if events.report_to_master.listeners:
            data: dict[str, Any] = {}
            events.report_to_master.fire(client_id=self.label, data=data)
            if data:
                self._send(Custom(name=REPORT, data=data))

    def _quit(self) -> None:
        hooks = getattr(self.env, "hooks", None)
        if hooks is not None:
            hooks.quitting()
            hooks.quit(0)

    # ---- desired state -----------------------------------------------------------------------------------
    def apply(self, message: Target | Rate) -> None:
        """Run the master's newest desired state (an older or repeated one changes nothing)."""
        if message.version and message.version <= self.applied:
            return
        self.applied = message.version
        runner = self.env.runner
        placement = runner.placement
        moved = (placement.slot, placement.slots) != (message.slot, max(1, message.slots))
        placement.slot, placement.slots = message.slot, max(1, message.slots)
        if isinstance(message, Target):
            runner.set_target(message.counts, message.spawn_rate, message.handover)
        else:
            runner.set_rate(message.rate, max(1, message.max_users), message.pre_allocate)
            if moved:
                runner.realign()

    def renewed(self) -> None:
        """An answered heartbeat: the lease and the clock moved."""
        placement = self.env.runner.placement
        placement.run_until = self.lease.until
        self.env.runner.lease_renewed()
        if abs(placement.offset - self.clock.offset) > CLOCK_REALIGN:
            placement.offset = self.clock.offset
            self.env.runner.realign()

    # ---- fence -------------------------------------------------------------------------------------------
    def _fence_loop(self) -> None:
        while not self.ended:
            now = time.monotonic()
            valid = self.lease.valid(now)
            if valid:
                self.granted = True
            if not valid and self.fenced_since is None and self.granted:
                self._fence(now)  # before the first grant nothing runs anyway (the runner holds)
            elif valid and self.fenced_since is not None and not self.closing:
                self._unfence(now)
            gevent.sleep(FENCE_CHECK)

    def _fence(self, now: float) -> None:
        runner = self.env.runner
        self.fenced_users = runner.user_count
        self.fenced_since = now
        runner.suspend()
        print(f"loadgen worker {self.label}: no answer from the master for {self.lease.duration:g} s: "
              f"{self.fenced_users} users stopped until it answers (the master may give them to others)",
              file=sys.stderr, flush=True)

    def _unfence(self, now: float) -> None:
        since, self.fenced_since = self.fenced_since, None
        assert since is not None
        print(f"loadgen worker {self.label}: the master answers again after {now - since:.1f} s; users resume",
              file=sys.stderr, flush=True)
        self.env.runner.resume()
        self._send(Event(kind="fenced", start=self.clock.master_time(since), end=self.clock.master_time(now),
                         users=self.fenced_users,
                         detail=f"{self.label} stopped {self.fenced_users} users for {now - since:.1f} s"))

    @property
    def fenced(self) -> bool:
        return self.fenced_since is not None

    # ---- deltas ------------------------------------------------------------------------------------------
    def _stats_loop(self) -> None:
        # Workers get Start within milliseconds of each other: a random phase keeps a large fleet from sending
        # its deltas in one burst each second.
        next_send = time.monotonic() + random.uniform(0.2, 1.0)
        while not self.ended:
            gevent.sleep(max(0.0, next_send - time.monotonic()))
            next_send += 1.0
            if self.ended:
                return
            self._take_delta(final=False)
            self.push()
            for notice in self.env.check(label=f"worker {self.label}"):
                self._send_warning(notice.kind, notice.message, notice.key)

    def _send_warning(self, kind: str, message: str, key: str) -> None:
        self._send(Warning_(kind=kind, message=message, key=key))

    def _take_delta(self, final: bool) -> None:
        now = time.monotonic()
        self._report_to_master()  # before the delta: the master has it when the delta (maybe the final) lands
        delta = self.cadence.pace(self.env.flush(), final)
        start, self._last_flush = self._last_flush, now
        self.outbox.add(encode_delta(delta), self.clock.master_time(start), self.clock.master_time(now), final)

    def push(self, reconnected: bool = False, force: bool = False) -> None:
        """Send what is due, unless the lease has lapsed (then it waits, and may be merged); ``force``: the
        test is over, send whatever the lease."""
        now = time.monotonic()
        if not self.lease.valid(now) and not (reconnected or force):
            return
        for item in self.outbox.due(now, reconnected):
            sent = self._send(Stats(test_id=self.test_id, delta=item.delta, final=item.final, run=self.run,
                                    seq=item.first,
                                    last=item.last, start=item.start, end=item.end))
            if not sent:
                return
            item.sent_at = now

    def acknowledged(self, upto: int) -> None:
        self.outbox.acknowledge(upto)

    # ---- end ---------------------------------------------------------------------------------------------
    def end(self, timeout: float) -> None:
        """Stop the users (honouring ``timeout``), queue the final delta and send it."""
        if self.ended:
            return
        self.ended = True
        gevent.killall(self._greenlets, block=False)
        try:
            self.env.stop(timeout)
        finally:
            self._take_delta(final=True)
            self.env.close()
            self.push(reconnected=True)
            self._quit()

    def wait_delivered(self, timeout: float) -> bool:
        """Resend until the master has acknowledged everything (the final delta included), for ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.outbox.pending and time.monotonic() < deadline:
            gevent.sleep(0.1)
            self.push(force=True)
        return not self.outbox.pending

    def drop(self) -> None:
        """The master that gave this test is gone: stop everything, send nothing."""
        self.ended = True
        gevent.killall(self._greenlets, block=False)
        try:
            self.env.stop(0.0)
        finally:
            self.env.close()
            self._quit()
