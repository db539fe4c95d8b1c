"""The open model: iterations start at a target rate on a bounded pool of users, whatever the response
times. An iteration that cannot get a user within ``DROP_AFTER`` seconds of its intended start is dropped
and counted; every iteration's queueing delay reaches the recorder through the user's timing."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

import gevent
from gevent.queue import Empty, Queue

from loadgen.engine.event_recorder import USER_ATTRIBUTE
from loadgen.engine.placement import Placement
from loadgen.engine.user_calls import UserRecord, run_task, start_user, stop_user
from loadgen.model.dispatch import class_counts
from loadgen.script.users import User, UserContext

DROP_AFTER = 1.0  # an open-model iteration that cannot start within this many seconds is dropped


class ArrivalScheduler:
    """Starts iterations at ``rate`` a second on at most ``max_users`` users."""

    def __init__(self, user_classes: Mapping[str, type[User]], context: UserContext, max_users: int,
                 stop_timeout: float, on_users: Callable[[], None], placement: Placement | None = None) -> None:
        self.user_classes = dict(user_classes)
        self.context = context
        self.recorder = context.recorder
        self.max_users = max_users
        self.stop_timeout = stop_timeout
        self.rate = 0.0
        self.idle: dict[str, Queue[UserRecord]] = {name: Queue() for name in self.user_classes}
        self.created: dict[str, int] = dict.fromkeys(self.user_classes, 0)
        self.all_records: list[UserRecord] = []
        self._busy: set[UserRecord] = set()
        self._iterations: set[gevent.Greenlet] = set()
        self._greenlet: gevent.Greenlet | None = None
        self._stopped = False
        self._suspended = False
        self._realign = True
        self.placement = placement or Placement()
        self._on_users = on_users
        self._names = list(self.user_classes)
        self._weights = [self.user_classes[n].weight for n in self._names]

    @property
    def user_count(self) -> int:
        return len(self.all_records)

    def busy(self) -> list[UserRecord]:
        return list(self._busy)

    def set_rate(self, rate: float) -> None:
        self.rate = max(0.0, rate)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._schedule)

    def pre_allocate(self, count: int) -> None:
        counts = class_counts(min(count, self.max_users), dict(zip(self._names, self._weights)))
        for name, n in counts.items():
            for _ in range(n):
                record = self._create(name)
                if record is not None:
                    self.idle[name].put(record)

    def _create(self, name: str) -> UserRecord | None:
        if len(self.all_records) >= self.max_users:
            return None
        try:
            user = self.user_classes[name](self.context)
        except Exception as exc:  # noqa: BLE001
            self.recorder.record_exception(f"{name}.__init__", exc)
            return None
        record = UserRecord(user, name)
        self.all_records.append(record)
        self.created[name] += 1
        if not start_user(record, self.recorder):
            self._retire(record)
            return None
        self._on_users()
        return record

    def _retire(self, record: UserRecord) -> None:
        """A user that raised ``StopUser`` leaves the pool; a new one is made when needed."""
        if record in self.all_records:
            self.all_records.remove(record)
        stop_user(record, self.recorder, self.stop_timeout)
        self._on_users()

    def realign(self) -> None:
        """Take the fleet grid again (this process's slot changed)."""
        self._realign = True

    def _schedule(self) -> None:
        next_time = time.monotonic()
        choices = random.choices
        placement = self.placement
        while not self._stopped:
            rate = self.rate
            now = time.monotonic()
            if rate <= 0 or self._suspended or now > placement.run_until:
                gevent.sleep(0.02)
                self._realign = True
                continue
            if self._realign:
                # slot i of N: arrivals 1/rate apart, i/N of that after the fleet clock's grid, so N processes'
                # arrivals interleave into one even stream
                self._realign = False
                interval = 1.0 / rate
                next_time = placement.next_on_grid(now, interval, interval * placement.slot / max(1, placement.slots))
            while next_time <= now and not self._stopped:
                name = self._names[0] if len(self._names) == 1 else choices(self._names, self._weights)[0]
                self._iterations.add(gevent.spawn(self._iteration, name, next_time))
                next_time += 1.0 / rate
            gevent.sleep(max(0.0, min(next_time - time.monotonic(), 0.05)))

    def _iteration(self, name: str, intended: float) -> None:
        try:
            queue = self.idle[name]
            record: UserRecord | None
            try:
                record = queue.get_nowait()
            except Empty:
                record = self._create(name)
                if record is None:
                    try:
                        record = queue.get(timeout=max(0.0, intended + DROP_AFTER - time.monotonic()))
                    except Empty:
                        self.recorder.record_dropped()
                        return
            try:
                again = self._run_once(record, intended)
            except gevent.GreenletExit:
                if record.fenced:
                    queue.put(record)  # killed by a fence: the user stays in the pool for the resume
                raise
            if again:
                queue.put(record)
            else:
                self._retire(record)
        finally:
            self._iterations.discard(gevent.getcurrent())

    def _run_once(self, record: UserRecord, intended: float) -> bool:
        """One iteration; False when the user stopped itself."""
        timing = record.user.timing
        timing.begin_iteration(int((time.monotonic() - intended) * 1e6))
        record.greenlet = gevent.getcurrent()
        setattr(record.greenlet, USER_ATTRIBUTE, record.user)
        self._busy.add(record)
        try:
            return run_task(record, self.recorder)
        finally:
            self._busy.discard(record)
            timing.take_queued_us()  # an iteration that recorded nothing leaves no delay for the next

    def suspend(self) -> list[gevent.Greenlet]:
        """Fenced: no new iterations; the running ones, to be killed (their users stay in the pool)."""
        self._suspended = True
        for record in self._busy:
            record.fenced = True
        return list(self._iterations)

    def resume(self) -> None:
        for record in self.all_records:
            record.fenced = False
        self._suspended = False

    def stop(self, timeout: float) -> list[gevent.Greenlet]:
        self._stopped = True
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        pending = list(self._iterations)
        return [gevent.spawn(self._stop_users, pending, timeout)]

    def _stop_users(self, pending: list[gevent.Greenlet], timeout: float) -> None:
        gevent.joinall(pending, timeout=timeout)
        gevent.killall([g for g in pending if not g.dead], timeout=1)
        for record in self.all_records:
            stop_user(record, self.recorder, self.stop_timeout)
        self.all_records.clear()
