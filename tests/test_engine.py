"""The runner in-process: both load models call user code by the same rules; queueing delay reaches the
recorder for every kind of sample."""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent

from loadgen.engine.runner import Runner
from loadgen.script.users import StopUser, User, UserContext, task
from loadgen.stats.recorder import Recorder


class Slow(User):
    done = 0

    @task
    def work(self) -> None:
        with self.measure("calc", "slow"):
            gevent.sleep(0.05)
        type(self).done += 1


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.02)


def test_measure_in_the_open_model_counts_from_the_intended_start() -> None:
    recorder = Recorder(open_model=True)
    runner = Runner({"Slow": Slow}, UserContext(recorder), stop_timeout=1.0)
    Slow.done = 0
    runner.set_rate(100, max_users=1)  # one user doing 20 a second is asked for 100: iterations queue
    wait_for(lambda: Slow.done >= 10)  # by then the 10th started >= 10 x 50 ms - 0.1 s late
    runner.stop(1.0)
    entry = recorder.flush().entries[("calc", "slow")]
    assert entry.service is not None and entry.requests >= 5
    assert entry.latency.max >= entry.service.max + 300_000, (entry.latency.max, entry.service.max)
    assert entry.latency.min >= entry.service.min


class Quitter(User):
    starts = 0

    def on_start(self) -> None:
        type(self).starts += 1

    @task
    def once(self) -> None:
        raise StopUser()


def test_stop_user_retires_a_user_in_both_models() -> None:
    for open_model in (False, True):
        Quitter.starts = 0
        recorder = Recorder(open_model=open_model)
        runner = Runner({"Quitter": Quitter}, UserContext(recorder), stop_timeout=0.5)
        if open_model:
            runner.set_rate(20, max_users=1)
        else:
            runner.set_users(1, spawn_rate=100)
        if open_model:
            wait_for(lambda: Quitter.starts >= 2)  # the user is gone; the pool makes a new one for the rate
        else:
            wait_for(lambda r=runner: Quitter.starts >= 1 and r.user_count == 0)
            gevent.sleep(0.3)
            assert Quitter.starts == 1  # as in Locust: a user that stopped itself is not replaced
        runner.stop(0.5)
        delta = recorder.flush()
        assert not delta.errors.rows(), delta.errors.rows()  # StopUser is no error in either model
