"""CURVE on the worker's side: a clear one-line reason when the master refuses our key (or we hold the
wrong master key), read from the DEALER's monitor socket."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import gevent
import zmq.green as zmq
from zmq.utils.monitor import recv_monitor_message


def refused_key(own: str) -> str:
    return (f"the master refused this worker's key {own}: add this worker's public .key file to the master's "
            "allowed keys (DIR/master/allowed, or --curve-allow) and restart the master")


def untrusted_master(endpoint: str, trusted: str) -> str:
    return (f"the master at {endpoint} does not hold the key this worker trusts ({trusted}): it is another "
            "machine, another fleet's master, or a master run with --insecure-no-auth; check --master, or give "
            "this worker that fleet's keys (DIR/worker from 'loadgen keys DIR', or --curve-master-key)")


def watch_handshakes(monitor: Callable[[], Any], running: Callable[[], bool], welcomed_once: Callable[[], bool],
                     refused: Callable[[str], None], endpoint: str, own: str, trusted: str) -> None:
    """Read handshake events until ``running()`` is False; call ``refused`` with the reason to exit. Once
    welcomed, failures only mean the master is away (or an impostor holds its address): keep trying."""
    failures = 0
    said = False
    while running():
        sock = monitor()
        if sock is None:
            gevent.sleep(0.2)
            continue
        try:
            if not sock.poll(200):
                continue
            event = recv_monitor_message(sock, flags=zmq.NOBLOCK)
        except (zmq.ZMQError, ValueError):
            gevent.sleep(0.2)
            continue
        kind = event["event"]
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            failures, said = 0, False
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            refused(refused_key(own))
        else:
            failures += 1
            if failures >= 3 and not welcomed_once():
                refused(untrusted_master(endpoint, trusted))
            elif failures >= 3 and not said:
                said = True  # once per outage: waiting for our own master, never joining this one
                print(f"loadgen worker: {untrusted_master(endpoint, trusted)}; waiting for the trusted master",
                      file=sys.stderr, flush=True)
