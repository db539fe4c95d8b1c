"""Calling into a user's code with one set of rules for both load models, and the runner's record of
each running user (what the stall watchdog reads).

Rules: ``StopUser`` retires the user; ``GreenletExit`` (a kill) propagates; any other exception is data
(an ``EXCEPTION`` error row named ``Class.method``) and the user carries on; ``on_stop`` gets at most the
stop timeout.
"""

from __future__ import annotations

import random
import time

import gevent

from loadgen.script.events import events
from loadgen.script.tasksets import InterruptTaskSet, TaskSet, is_task_set
from loadgen.script.users import RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser, User
from loadgen.stats.recorder import Recorder


class UserRecord:
    """The runner's own state of one user: its greenlet and the task it is in (never stored on the user)."""

    __slots__ = ("user", "cls_name", "greenlet", "stopping", "task", "hook", "task_started", "fenced", "again",
                 "task_sets")

    def __init__(self, user: User, cls_name: str) -> None:
        self.user = user
        self.cls_name = cls_name
        self.greenlet: gevent.Greenlet | None = None
        self.stopping = False
        self.task: str | None = None  # the task running now, None between tasks
        self.hook: str | None = None  # "on_start" or "on_stop" while one runs (the watchdog watches those too)
        self.task_started = 0.0
        self.fenced = False  # killed by a fence: no on_stop
        self.again = False  # the task raised RescheduleTaskImmediately: the next one starts without a wait
        self.task_sets: list[TaskSet] = []  # the task sets entered, innermost last: it chooses the next task

    def wait_owner(self) -> User | TaskSet:
        """Whose wait time follows a task: the innermost task set if it has its own, else the user (as Locust:
        a task set without one falls back to the user's, not to its parent's)."""
        if self.task_sets and type(self.task_sets[-1]).wait_time is not None:
            return self.task_sets[-1]
        return self.user


def start_user(record: UserRecord, recorder: Recorder) -> bool:
    """Run ``on_start``; False when the user stopped itself there."""
    record.hook, record.task_started = "on_start", time.monotonic()
    try:
        record.user.on_start()
    except StopUser:
        return False
    except StopTest:
        stop_test(record.user)
        return False
    except Exception as exc:  # noqa: BLE001 - a failing hook is data
        recorder.record_exception(f"{record.cls_name}.on_start", exc)
    finally:
        record.hook = None
    return True


def run_task(record: UserRecord, recorder: Recorder) -> bool:
    """Run the next task: chosen by weight from the user's table, or by the innermost task set entered.
    Choosing a ``TaskSet`` enters it (its ``on_start``), and its first task runs at once, in the same call:
    one call, one task. False when the user raised ``StopUser``."""
    user = record.user
    task_sets = record.task_sets
    owner: User | TaskSet
    record.task_started = time.monotonic()
    try:
        while True:
            if task_sets:
                owner = task_sets[-1]
                name, func = owner.next_task()
            else:
                owner = user
                table = user._task_table
                name, func = table[0] if len(table) == 1 else random.choice(table)
            record.task = name
            if not is_task_set(func):
                break
            task_set = func(owner)
            task_sets.append(task_set)
            try:
                task_set.on_start()
            except InterruptTaskSet as exc:  # it never ran: left without its on_stop, as in Locust
                task_sets.pop()
                record.again = exc.reschedule
                return True
            except BaseException:
                task_sets.pop()
                raise
        if getattr(func, "__self__", None) is owner:  # a bound method given to schedule_task
            func()
        else:
            func(owner)
    except StopUser:
        return False
    except InterruptTaskSet as exc:
        if task_sets and task_sets[-1] is owner:
            leave_task_set(record, recorder)
        record.again = exc.reschedule
    except RescheduleTaskImmediately:
        record.again = True
    except RescheduleTask:
        record.again = False
    except StopTest:
        stop_test(user)
        return False
    except Exception as exc:  # noqa: BLE001 - a failing task is data
        record.again = False
        recorder.record_exception(f"{record.cls_name}.{record.task}", exc)
        if events.user_error.listeners:
            events.user_error.fire(user_instance=owner, exception=exc, tb=exc.__traceback__)
    finally:
        record.task = None
        recorder.record_iteration()
    return True


def stop_test(user: User) -> None:
    """``StopTest`` raised in a task: the whole test stops (as ``environment.runner.quit()``)."""
    environment = user._context.environment
    runner = getattr(environment, "runner", None)
    if runner is not None:
        runner.quit()


def leave_task_set(record: UserRecord, recorder: Recorder) -> None:
    """Leave the innermost task set: its ``on_stop`` (a failure there is data)."""
    task_set = record.task_sets.pop()
    try:
        task_set.on_stop()
    except (StopUser, InterruptTaskSet, RescheduleTask):
        pass
    except Exception as exc:  # noqa: BLE001
        recorder.record_exception(f"{record.cls_name}.{type(task_set).__name__}.on_stop", exc)


def stop_user(record: UserRecord, recorder: Recorder, timeout: float) -> None:
    """Run ``on_stop`` (for at most ``timeout`` seconds) and close the user's connections."""
    user = record.user
    record.hook, record.task_started = "on_stop", time.monotonic()
    try:
        if not record.fenced:
            with gevent.Timeout(timeout, False):
                while record.task_sets:  # the task sets entered are left first, innermost first
                    leave_task_set(record, recorder)
                user.on_stop()
    except gevent.GreenletExit:
        pass
    except Exception as exc:  # noqa: BLE001
        recorder.record_exception(f"{record.cls_name}.on_stop", exc)
    finally:
        record.hook = None
    close = getattr(user, "close", None)  # HttpUser: its pooled connections
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001,S110 - closing is best effort
            pass
