"""Runs users in this process: spawns and stops them at a rate towards per-class targets (closed model),
or hands iterations to the arrival scheduler (open model). The same runner serves ``loadgen run`` and
every worker process."""

from __future__ import annotations

import time
from collections.abc import Mapping

import gevent

from loadgen.engine.arrivals import ArrivalScheduler
from loadgen.engine.event_recorder import USER_ATTRIBUTE
from loadgen.engine.placement import Placement
from loadgen.engine.user_calls import UserRecord, run_task, start_user, stop_user
from loadgen.model.dispatch import class_counts
from loadgen.script.pacing import Pacing, phase, wait_seconds
from loadgen.script.users import User, UserContext

SPAWN_TICK = 0.05


class Runner:
    """Holds the users of one process and moves them towards a target."""

    def __init__(self, user_classes: Mapping[str, type[User]], context: UserContext,
                 stop_timeout: float = 10.0, iterations: int | None = None) -> None:
        self.user_classes = dict(user_classes)
        self.context = context
        self.recorder = context.recorder
        self.stop_timeout = stop_timeout
        self.records: dict[str, list[UserRecord]] = {name: [] for name in self.user_classes}
        self.target: dict[str, int] = dict.fromkeys(self.user_classes, 0)
        self.spawn_rate = 1.0
        self.spawned_total: dict[str, int] = dict.fromkeys(self.user_classes, 0)
        self.retired: dict[str, int] = dict.fromkeys(self.user_classes, 0)  # stopped themselves: not replaced
        self.spawning_paused = False
        self._spawner: gevent.Greenlet | None = None
        self._arrivals: ArrivalScheduler | None = None
        self._stopped = False
        self._forced = False
        self.placement = Placement()
        self.stop_rate = 0.0  # users a second to stop when above target (0: at once): set by a handover
        self.suspended = False  # fenced: no users run until resume()
        self.iterations = iterations  # -i: the fleet's tasks in all; this process runs its slot's share
        self._iterations_left: int | None = None

    # ---- closed model ------------------------------------------------------------------------------------
    @property
    def user_count(self) -> int:
        count = sum(len(records) for records in self.records.values())
        if self._arrivals is not None:
            count += self._arrivals.user_count
        return count

    def weights(self) -> dict[str, float]:
        return {name: cls.weight for name, cls in self.user_classes.items()}

    def set_users(self, total: int, spawn_rate: float, classes: tuple[str, ...] = ()) -> None:
        """Target ``total`` users split over classes (``classes``: only those) by weight."""
        fixed = {name: cls.fixed_count for name, cls in self.user_classes.items()}
        self.set_target(class_counts(total, self.weights(), fixed, classes), spawn_rate)

    def set_target(self, counts: Mapping[str, int], spawn_rate: float, handover: float = 0.0) -> None:
        """Target user counts per class, reached at ``spawn_rate`` users a second. With ``handover`` (seconds),
        the users above target are given up evenly over that time, however many there are now: a joining
        worker starts them at that pace, so the fleet's total holds."""
        if self._stopped:
            return
        target = {name: max(0, int(counts.get(name, 0))) for name in self.user_classes}
        if target != self.target:  # a new target (a shape's step, a ramp): users that stopped themselves are
            self.retired = dict.fromkeys(self.user_classes, 0)  # replaced as the new count needs, as in Locust
        self.target = target
        self.spawn_rate = max(spawn_rate, 0.001)
        if handover > 0:
            surplus = sum(max(0, len(self.records[n]) - self.target[n]) for n in self.user_classes)
            self.stop_rate = surplus / handover if surplus else 0.0
        else:
            self.stop_rate = 0.0
        if not self.suspended and (self._spawner is None or self._spawner.dead):
            self._spawner = gevent.spawn(self._spawn_loop)

    def _spawn_loop(self) -> None:
        placement = self.placement
        credit = 1.0 - placement.slot / max(1, placement.slots)  # slot i of N starts i/N of a spawn later
        stop_credit = 0.5  # a handover: users leave half a step behind the pace their takers start them
        last = time.monotonic()
        while not self._stopped and not self.suspended:
            now = time.monotonic()
            credit = min(credit + (now - last) * self.spawn_rate, max(1.0, self.spawn_rate))
            stop_credit = min(stop_credit + (now - last) * self.stop_rate, max(1.0, self.stop_rate))
            last = now
            surplus, stop_credit = self._trim_surplus(stop_credit if self.stop_rate else None)
            deficit = {n: self.target[n] - len(r) - self.retired[n] for n, r in self.records.items()
                       if self.target[n] > len(r) + self.retired[n]}
            if self._iterations_left == 0:
                deficit = {}  # -i reached: the users that finished are not replaced
            if not deficit and not surplus:
                return
            held = now > placement.run_until  # the lease lapsed: the fence is about to stop everyone
            while deficit and credit >= 1.0 and not self.spawning_paused and not held:
                name = max(deficit, key=lambda n: deficit[n] / max(1, self.target[n]))
                self._start_user(name)
                credit -= 1.0
                deficit[name] -= 1
                if deficit[name] <= 0:
                    del deficit[name]
            gevent.sleep(SPAWN_TICK)

    def _trim_surplus(self, credit: float | None) -> tuple[bool, float]:
        """Stop the newest users of classes above target (all at once, or as many as ``credit`` allows);
        returns whether any class was above, and the credit left."""
        any_surplus = False
        for name, records in self.records.items():
            extra = len(records) - self.target[name]
            if extra > 0:
                any_surplus = True
                if credit is not None:
                    extra = min(extra, int(credit))
                    credit -= extra
                if extra <= 0:
                    continue
                for record in records[-extra:]:
                    self._stop_record(record)
                del records[-extra:]
        return any_surplus, credit if credit is not None else 1.0

    def _start_user(self, name: str) -> None:
        cls = self.user_classes[name]
        index = self.spawned_total[name]
        self.spawned_total[name] = index + 1
        try:
            user = cls(self.context)
        except Exception as exc:  # noqa: BLE001 - a broken user class is data, not a crash
            self.recorder.record_exception(f"{name}.__init__", exc)
            return
        record = UserRecord(user, name)
        self.records[name].append(record)
        record.greenlet = gevent.spawn(self._user_main, record, index)
        setattr(record.greenlet, USER_ATTRIBUTE, user)  # whose context() its request events carry
        self.recorder.users = self.user_count

    @staticmethod
    def _stop_record(record: UserRecord) -> None:
        record.stopping = True
        if record.task is None and record.greenlet is not None:
            record.greenlet.kill(block=False)

    def _user_main(self, record: UserRecord, index: int) -> None:
        try:
            if start_user(record, self.recorder):
                self._task_loop(record, index)
            if not record.stopping:  # StopUser: it is not replaced (as in Locust)
                self.retired[record.cls_name] += 1
        except gevent.GreenletExit:
            pass
        finally:
            self._finish_user(record)

    def _task_loop(self, record: UserRecord, index: int) -> None:
        user = record.user
        wait_time = user.wait_time
        pacing = wait_time.interval if isinstance(wait_time, Pacing) else 0.0
        recorder = self.recorder
        next_slot = 0.0
        placement = self.placement
        if pacing:
            spread = phase(index * placement.slots + placement.slot, pacing)  # one sequence over the fleet
            next_slot = placement.next_on_grid(time.monotonic(), pacing, spread)
            user.timing.plan_slot(next_slot)
            gevent.sleep(next_slot - time.monotonic())
        while not record.stopping:
            if time.monotonic() > placement.run_until:
                self._hold(record)  # the lease lapsed: start nothing until it is renewed or we are fenced
                if record.stopping:
                    return
                if pacing:
                    next_slot = time.monotonic()
            if self.iterations is not None and not self._take_iteration():
                return  # -i reached: this user is done
            if not run_task(record, recorder) or record.stopping:
                return
            if record.again:  # RescheduleTaskImmediately: no wait (a paced user starts a new grid from now)
                record.again = False
                if pacing:
                    next_slot = time.monotonic()
                    user.timing.plan_slot(next_slot)
                continue
            if pacing:
                next_slot += pacing
                now = time.monotonic()
                if now >= next_slot + pacing:
                    missed = int((now - next_slot) / pacing)
                    recorder.record_missed(missed)
                    next_slot += missed * pacing
                user.timing.plan_slot(next_slot)
                delay = next_slot - now
                gevent.sleep(delay if delay > 0 else 0)
            else:
                try:
                    owner = record.wait_owner() if record.task_sets else user
                    own = wait_time if owner is user else owner.wait_time
                    if isinstance(own, Pacing):  # a task set's constant_pacing: its interval from the task's start
                        delay = max(0.0, own.interval - (time.monotonic() - record.task_started))
                    else:
                        delay = wait_seconds(own, owner)
                except Exception as exc:  # noqa: BLE001 - a broken wait_time is data; fall back to 1 s
                    recorder.record_exception(f"{record.cls_name}.wait_time", exc)
                    delay = 1.0
                gevent.sleep(delay)

    def _take_iteration(self) -> bool:
        """One task of the -i budget: this process's share of the fleet's (by its slot), taken once."""
        left = self._iterations_left
        if left is None:
            total, placement = self.iterations or 0, self.placement
            slots = max(1, placement.slots)
            left = total // slots + (1 if placement.slot < total % slots else 0)
        if left <= 0:
            self._iterations_left = 0
            return False
        self._iterations_left = left - 1
        return True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _hold(self, record: UserRecord) -> None:
        placement = self.placement
        while time.monotonic() > placement.run_until and not record.stopping:
            gevent.sleep(0.02)

    def _finish_user(self, record: UserRecord) -> None:
        stop_user(record, self.recorder, self.stop_timeout)
        records = self.records.get(record.cls_name)
        if records is not None and record in records:
            records.remove(record)
        self.recorder.users = self.user_count

    # ---- open model --------------------------------------------------------------------------------------
    def set_rate(self, rate: float, max_users: int, pre_allocate: int = 0) -> None:
        """Start ``rate`` iterations a second on at most ``max_users`` users."""
        if self._stopped:
            return
        if self._arrivals is None:
            self._arrivals = ArrivalScheduler(self.user_classes, self.context, max_users, self.stop_timeout,
                                              on_users=self._count_users, placement=self.placement)
            if pre_allocate:
                self._arrivals.pre_allocate(pre_allocate)
        self._arrivals.max_users = max_users
        self._arrivals.set_rate(rate)

    def realign(self) -> None:
        """This process's slot in the fleet changed: arrivals take the fleet grid again."""
        if self._arrivals is not None:
            self._arrivals.realign()

    def _count_users(self) -> None:
        self.recorder.users = self.user_count

    # ---- fencing -----------------------------------------------------------------------------------------
    def suspend(self) -> None:
        """Fenced: kill every user and iteration now, without ``on_stop`` (its requests must not go out
        either); the targets are kept for ``resume``."""
        if self._stopped or self.suspended:
            return
        self.suspended = True
        if self._spawner is not None:
            self._spawner.kill(block=False)
        greenlets = []
        for records in self.records.values():
            for record in records:
                record.stopping = record.fenced = True
                if record.greenlet is not None:
                    greenlets.append(record.greenlet)
        if self._arrivals is not None:
            greenlets.extend(self._arrivals.suspend())
        gevent.killall(greenlets, block=False)
        self.recorder.users = self.user_count

    def lease_renewed(self) -> None:
        """Nothing to do: the placement's ``run_until`` is what the users read."""

    def resume(self) -> None:
        """The lease is back: move towards the targets again, at the spawn rate."""
        if self._stopped or not self.suspended:
            return
        self.suspended = False
        if self._arrivals is not None:
            self._arrivals.resume()
        if self._spawner is None or self._spawner.dead:
            self._spawner = gevent.spawn(self._spawn_loop)

    # ---- stop --------------------------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        """Stop every user: idle ones at once, busy ones after their task or at ``timeout``."""
        timeout = self.stop_timeout if timeout is None else timeout
        self._stopped = True
        if self._spawner is not None:
            self._spawner.kill(block=False)
        greenlets = []
        if self._arrivals is not None:
            greenlets.extend(self._arrivals.stop(timeout))
        for records in self.records.values():
            for record in list(records):
                self._stop_record(record)
                if record.greenlet is not None:
                    greenlets.append(record.greenlet)
        deadline = time.monotonic() + timeout
        while not self._forced and time.monotonic() < deadline and not all(g.dead for g in greenlets):
            gevent.joinall(greenlets, timeout=min(0.1, max(0.0, deadline - time.monotonic())))
        stragglers = [g for g in greenlets if not g.dead]
        if stragglers:
            gevent.killall(stragglers, timeout=2)
        self.recorder.users = 0

    def force_stop(self) -> None:
        """End a ``stop()`` in progress now: its remaining users are killed (a second Ctrl-C)."""
        self._forced = True

    def running(self) -> list[UserRecord]:
        """Every user now running (closed model) or in an iteration (open model)."""
        records = [record for records in self.records.values() for record in records]
        if self._arrivals is not None:
            records.extend(self._arrivals.busy())
        return records
