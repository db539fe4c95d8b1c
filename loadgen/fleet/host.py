"""``loadgen worker --processes N``: one machine as one peer of the master. The parent runs the hub and the
machine's ``Worker`` (with its children as the test's environment); the children are ordinary workers
connected to the hub, restarted when they crash."""

from __future__ import annotations

import os
import socket
import sys

import gevent

from loadgen.fleet.group import GroupPreparation
from loadgen.fleet.hub import Hub
from loadgen.fleet.protocol import Message
from loadgen.fleet.security import CurveKeys, peer_id
from loadgen.fleet.supervisor import HUB_ENV, Children, child_argv
from loadgen.fleet.worker import Worker

CHILDREN_TIMEOUT = 60.0


def run_machine(count: int, argv: list[str], master: str, heartbeat_interval: float, master_timeout: float,
                stay: bool, keys: CurveKeys | None, give_up_after: float = 0.0) -> int:
    """Run the machine's worker over ``count`` children; returns the exit code."""
    worker: Worker | None = None

    def upstream(message: Message) -> bool:
        return worker.send(message) if worker is not None else False

    hub = Hub(upstream)
    command = [*child_argv(argv), "--stay"]
    children = Children(count, command, dict(os.environ, LOADGEN_PROCESSES="1", **{HUB_ENV: hub.endpoint}))
    machine_id = peer_id(f"{socket.gethostname()}-{os.getpid()}-m{count}", keys) if keys is not None \
        else f"{socket.gethostname()}-{os.getpid()}-m{count}"
    worker = Worker(master, heartbeat_interval=heartbeat_interval, master_timeout=master_timeout, stay=stay,
                    keys=keys, worker_id=machine_id, processes=count,
                    preparation=None, give_up_after=give_up_after)
    worker.preparation = GroupPreparation(hub, worker.clock.master_time)
    hub.lease_until_of = lambda: worker.lease.until if worker is not None else float("-inf")
    children.start_all()
    with gevent.Timeout(CHILDREN_TIMEOUT, False):  # introduce the machine once its processes are there
        while len(hub.children) < count:
            gevent.sleep(0.05)
    print(f"loadgen worker {machine_id}: {len(hub.children)} of {count} processes ready; one peer of the master",
          file=sys.stderr, flush=True)

    def keep() -> None:
        while children.check():
            gevent.sleep(0.1)

    keeper = gevent.spawn(keep)
    try:
        code = worker.run()
    finally:
        children.stopping = True
        hub.close()
        deadline = 50  # x 0.1 s: the children leave on the hub's Quit
        while children.check() and deadline > 0:
            gevent.sleep(0.1)
            deadline -= 1
        children.signal_all(9)
        keeper.kill(block=False)
    return code or children.worst
