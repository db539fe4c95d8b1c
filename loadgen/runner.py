"""Runs users in this process: spawns and stops them at a rate (closed model) or starts iterations at an
arrival rate (open model). The same runner serves ``loadgen run`` and every worker process."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

import gevent
from gevent.queue import Empty, Queue

from loadgen.dispatch import class_counts
from loadgen.pacing import Pacing, phase, wait_seconds
from loadgen.users import StopUser, User, UserContext

SPAWN_TICK = 0.05
DROP_AFTER = 1.0  # an open-model iteration that cannot start within this many seconds is dropped


class _Slot:
    """One running closed-model user and its greenlet."""

    __slots__ = ("user", "greenlet", "stopping", "in_task", "cls_name")

    def __init__(self, user: User, cls_name: str) -> None:
        self.user = user
        self.cls_name = cls_name
        self.greenlet: gevent.Greenlet | None = None
        self.stopping = False
        self.in_task = False


class Runner:
    """Holds the users of one process and moves them towards a target."""

    def __init__(self, user_classes: Mapping[str, type[User]], context: UserContext,
                 stop_timeout: float = 10.0) -> None:
        self.user_classes = dict(user_classes)
        self.context = context
        self.recorder = context.recorder
        self.stop_timeout = stop_timeout
        self.slots: dict[str, list[_Slot]] = {name: [] for name in self.user_classes}
        self.target: dict[str, int] = dict.fromkeys(self.user_classes, 0)
        self.spawn_rate = 1.0
        self.spawned_total: dict[str, int] = dict.fromkeys(self.user_classes, 0)
        self.spawning_paused = False
        self._spawner: gevent.Greenlet | None = None
        self._arrivals: _ArrivalScheduler | None = None
        self._stopped = False
        self._forced = False

    # ---- closed model ------------------------------------------------------------------------------------
    @property
    def user_count(self) -> int:
        count = sum(len(slots) for slots in self.slots.values())
        if self._arrivals is not None:
            count += self._arrivals.user_count
        return count

    def weights(self) -> dict[str, float]:
        return {name: cls.weight for name, cls in self.user_classes.items()}

    def set_users(self, total: int, spawn_rate: float) -> None:
        """Target ``total`` users split over classes by weight."""
        fixed = {name: cls.fixed_count for name, cls in self.user_classes.items()}
        self.set_target(class_counts(total, self.weights(), fixed), spawn_rate)

    def set_target(self, counts: Mapping[str, int], spawn_rate: float) -> None:
        """Target user counts per class, reached at ``spawn_rate`` users a second."""
        if self._stopped:
            return
        self.target = {name: max(0, int(counts.get(name, 0))) for name in self.user_classes}
        self.spawn_rate = max(spawn_rate, 0.001)
        if self._spawner is None or self._spawner.dead:
            self._spawner = gevent.spawn(self._spawn_loop)

    def _spawn_loop(self) -> None:
        credit = 1.0  # the first user starts at once
        last = time.monotonic()
        while not self._stopped:
            now = time.monotonic()
            credit = min(credit + (now - last) * self.spawn_rate, max(1.0, self.spawn_rate))
            last = now
            surplus = self._trim_surplus()
            deficit = {n: self.target[n] - len(s) for n, s in self.slots.items() if self.target[n] > len(s)}
            if not deficit and not surplus:
                return
            while deficit and credit >= 1.0 and not self.spawning_paused:
                name = max(deficit, key=lambda n: deficit[n] / max(1, self.target[n]))
                self._start_user(name)
                credit -= 1.0
                deficit[name] -= 1
                if deficit[name] <= 0:
                    del deficit[name]
            gevent.sleep(SPAWN_TICK)

    def _trim_surplus(self) -> bool:
        """Stop the newest users of classes above target; returns whether any class was above."""
        any_surplus = False
        for name, slots in self.slots.items():
            extra = len(slots) - self.target[name]
            if extra > 0:
                any_surplus = True
                for slot in slots[-extra:]:
                    self._stop_slot(slot)
                del slots[-extra:]
        return any_surplus

    def _start_user(self, name: str) -> None:
        cls = self.user_classes[name]
        index = self.spawned_total[name]
        self.spawned_total[name] = index + 1
        try:
            user = cls(self.context)
        except Exception as exc:  # noqa: BLE001 - a broken user class is data, not a crash
            self.recorder.record_exception(f"{name}.__init__", exc)
            return
        slot = _Slot(user, name)
        self.slots[name].append(slot)
        slot.greenlet = gevent.spawn(self._user_main, slot, index)
        user._greenlet = slot.greenlet  # type: ignore[attr-defined]  # the watchdog reads its stack
        self.recorder.users = self.user_count

    def _stop_slot(self, slot: _Slot) -> None:
        slot.stopping = True
        if not slot.in_task and slot.greenlet is not None:
            slot.greenlet.kill(block=False)

    def _user_main(self, slot: _Slot, index: int) -> None:
        user = slot.user
        cls_name = slot.cls_name
        try:
            try:
                user.on_start()
            except StopUser:
                return
            except Exception as exc:  # noqa: BLE001
                self.recorder.record_exception(f"{cls_name}.on_start", exc)
            self._task_loop(slot, index)
        except gevent.GreenletExit:
            pass
        finally:
            self._finish_user(slot)

    def _task_loop(self, slot: _Slot, index: int) -> None:
        user = slot.user
        table = user._task_table
        wait_time = user.wait_time
        pacing = wait_time.interval if isinstance(wait_time, Pacing) else 0.0
        record_exception = self.recorder.record_exception
        prefix = slot.cls_name + "."
        next_slot = 0.0
        if pacing:
            next_slot = time.monotonic() + phase(index, pacing)
            user._next_slot = next_slot  # type: ignore[attr-defined]
            gevent.sleep(next_slot - time.monotonic())
        while not slot.stopping:
            name, func = table[0] if len(table) == 1 else random.choice(table)
            slot.in_task = True
            user.current_task = name
            user.task_started = time.monotonic()
            try:
                func(user)
            except StopUser:
                return
            except gevent.GreenletExit:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing task is data
                record_exception(prefix + name, exc)
            finally:
                slot.in_task = False
                user.current_task = None
            if slot.stopping:
                return
            if pacing:
                next_slot += pacing
                now = time.monotonic()
                if now >= next_slot + pacing:
                    missed = int((now - next_slot) / pacing)
                    self.recorder.record_missed(missed)
                    next_slot += missed * pacing
                user._next_slot = next_slot  # type: ignore[attr-defined]
                delay = next_slot - now
                gevent.sleep(delay if delay > 0 else 0)
            else:
                try:
                    delay = wait_seconds(wait_time, user)
                except Exception as exc:  # noqa: BLE001 - a broken wait_time is data; fall back to 1 s
                    record_exception(prefix + "wait_time", exc)
                    delay = 1.0
                gevent.sleep(delay)

    def _finish_user(self, slot: _Slot) -> None:
        user = slot.user
        try:
            with gevent.Timeout(self.stop_timeout, False):
                user.on_stop()
        except gevent.GreenletExit:
            pass
        except Exception as exc:  # noqa: BLE001
            self.recorder.record_exception(f"{slot.cls_name}.on_stop", exc)
        _close_user(user)
        slots = self.slots.get(slot.cls_name)
        if slots is not None and slot in slots:
            slots.remove(slot)
        self.recorder.users = self.user_count

    # ---- open model --------------------------------------------------------------------------------------
    def set_rate(self, rate: float, max_users: int, pre_allocate: int = 0) -> None:
        """Start ``rate`` iterations a second on at most ``max_users`` users."""
        if self._stopped:
            return
        if self._arrivals is None:
            self._arrivals = _ArrivalScheduler(self, max_users)
            if pre_allocate:
                self._arrivals.pre_allocate(pre_allocate)
        self._arrivals.max_users = max_users
        self._arrivals.set_rate(rate)

    # ---- stop --------------------------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        """Stop every user: idle ones at once, busy ones after their task or at ``timeout``."""
        timeout = self.stop_timeout if timeout is None else timeout
        self._stopped = True
        if self._spawner is not None:
            self._spawner.kill(block=False)
        greenlets = []
        if self._arrivals is not None:
            greenlets.extend(self._arrivals.stop())
        for slots in self.slots.values():
            for slot in list(slots):
                self._stop_slot(slot)
                if slot.greenlet is not None:
                    greenlets.append(slot.greenlet)
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

    def running_users(self) -> list[User]:
        users = [slot.user for slots in self.slots.values() for slot in slots]
        if self._arrivals is not None:
            users.extend(self._arrivals.busy_users())
        return users


class _ArrivalScheduler:
    """Open model: starts iterations at a target rate on a bounded pool of users."""

    def __init__(self, runner: Runner, max_users: int) -> None:
        self.runner = runner
        self.max_users = max_users
        self.rate = 0.0
        self.idle: dict[str, Queue] = {name: Queue() for name in runner.user_classes}
        self.created: dict[str, int] = dict.fromkeys(runner.user_classes, 0)
        self.all_users: list[User] = []
        self.busy: set[Any] = set()
        self._iterations: set[gevent.Greenlet] = set()
        self._greenlet: gevent.Greenlet | None = None
        self._stopped = False
        names = list(runner.user_classes)
        weights = [runner.user_classes[n].weight for n in names]
        self._names = names
        self._weights = weights

    @property
    def user_count(self) -> int:
        return len(self.all_users)

    def busy_users(self) -> list[User]:
        return list(self.busy)

    def set_rate(self, rate: float) -> None:
        self.rate = max(0.0, rate)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._schedule)

    def pre_allocate(self, count: int) -> None:
        counts = class_counts(min(count, self.max_users), dict(zip(self._names, self._weights)))
        for name, n in counts.items():
            for _ in range(n):
                user = self._create(name)
                if user is not None:
                    self.idle[name].put(user)

    def _create(self, name: str) -> User | None:
        if len(self.all_users) >= self.max_users:
            return None
        try:
            user = self.runner.user_classes[name](self.runner.context)
        except Exception as exc:  # noqa: BLE001
            self.runner.recorder.record_exception(f"{name}.__init__", exc)
            return None
        self.all_users.append(user)
        self.created[name] += 1
        try:
            user.on_start()
        except Exception as exc:  # noqa: BLE001
            self.runner.recorder.record_exception(f"{name}.on_start", exc)
        self.runner.recorder.users = self.runner.user_count
        return user

    def _schedule(self) -> None:
        next_time = time.monotonic()
        choices = random.choices
        while not self._stopped:
            rate = self.rate
            if rate <= 0:
                gevent.sleep(0.05)
                next_time = time.monotonic()
                continue
            now = time.monotonic()
            while next_time <= now and not self._stopped:
                name = self._names[0] if len(self._names) == 1 else choices(self._names, self._weights)[0]
                self._iterations.add(gevent.spawn(self._iteration, name, next_time))
                next_time += 1.0 / rate
            gevent.sleep(max(0.0, min(next_time - time.monotonic(), 0.05)))

    def _iteration(self, name: str, intended: float) -> None:
        try:
            queue = self.idle[name]
            user: User | None
            try:
                user = queue.get_nowait()
            except Empty:
                user = self._create(name)
                if user is None:
                    try:
                        user = queue.get(timeout=max(0.0, intended + DROP_AFTER - time.monotonic()))
                    except Empty:
                        self.runner.recorder.record_dropped()
                        return
            self._run_once(user, name, intended)
            queue.put(user)
        finally:
            self._iterations.discard(gevent.getcurrent())

    def _run_once(self, user: User, name: str, intended: float) -> None:
        table = user._task_table
        task_name, func = table[0] if len(table) == 1 else random.choice(table)
        started = time.monotonic()
        queued_us = int((started - intended) * 1e6)
        user._queued_us = queued_us  # type: ignore[attr-defined]
        client = getattr(user, "client", None)
        if client is not None:
            client.queued_us = queued_us
        self.busy.add(user)
        user._greenlet = gevent.getcurrent()  # type: ignore[attr-defined]  # the watchdog reads its stack
        user.current_task = task_name
        user.task_started = started
        try:
            func(user)
        except (StopUser, gevent.GreenletExit):
            pass
        except Exception as exc:  # noqa: BLE001
            self.runner.recorder.record_exception(f"{name}.{task_name}", exc)
        finally:
            user.current_task = None
            self.busy.discard(user)
            if client is not None:
                client.queued_us = 0

    def stop(self) -> list[gevent.Greenlet]:
        self._stopped = True
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        pending = list(self._iterations)
        return [gevent.spawn(self._stop_users, pending)]

    def _stop_users(self, pending: list[gevent.Greenlet]) -> None:
        gevent.joinall(pending, timeout=self.runner.stop_timeout)
        gevent.killall([g for g in pending if not g.dead], timeout=1)
        for user in self.all_users:
            try:
                with gevent.Timeout(2, False):
                    user.on_stop()
            except Exception as exc:  # noqa: BLE001
                self.runner.recorder.record_exception(f"{type(user).__name__}.on_stop", exc)
            _close_user(user)
        self.all_users.clear()


def _close_user(user: User) -> None:
    close = getattr(user, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001,S110 - closing is best effort
            pass
