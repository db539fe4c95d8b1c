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

from loadgen.script.users import RescheduleTask, RescheduleTaskImmediately, StopUser, User
from loadgen.stats.recorder import Recorder


class UserRecord:
    """The runner's own state of one user: its greenlet and the task it is in (never stored on the user)."""

    __slots__ = ("user", "cls_name", "greenlet", "stopping", "task", "hook", "task_started", "fenced", "again")

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


def start_user(record: UserRecord, recorder: Recorder) -> bool:
    """Run ``on_start``; False when the user stopped itself there."""
    record.hook, record.task_started = "on_start", time.monotonic()
    try:
        record.user.on_start()
    except StopUser:
        return False
    except Exception as exc:  # noqa: BLE001 - a failing hook is data
        recorder.record_exception(f"{record.cls_name}.on_start", exc)
    finally:
        record.hook = None
    return True


def run_task(record: UserRecord, recorder: Recorder) -> bool:
    """Run one task chosen by weight; False when the user raised ``StopUser``."""
    user = record.user
    table = user._task_table
    name, func = table[0] if len(table) == 1 else random.choice(table)
    record.task = name
    record.task_started = time.monotonic()
    try:
        func(user)
    except StopUser:
        return False
    except RescheduleTaskImmediately:
        record.again = True
    except RescheduleTask:
        pass
    except Exception as exc:  # noqa: BLE001 - a failing task is data
        recorder.record_exception(f"{record.cls_name}.{name}", exc)
    finally:
        record.task = None
        recorder.record_iteration()
    return True


def stop_user(record: UserRecord, recorder: Recorder, timeout: float) -> None:
    """Run ``on_stop`` (for at most ``timeout`` seconds) and close the user's connections."""
    user = record.user
    record.hook, record.task_started = "on_stop", time.monotonic()
    try:
        if not record.fenced:
            with gevent.Timeout(timeout, False):
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
