"""CURVE on the worker's side: a clear one-line reason when the master refuses our key (or we hold the
wrong master key), read from the DEALER's monitor socket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import zmq.green as zmq
from zmq.utils.monitor import recv_monitor_message

REFUSED_KEY = ("the master refused this worker's CURVE key: copy this worker's public .key file "
               "into the master's --curve-allow directory and restart the master")
FAILED_THRICE = ("the CURVE handshake with the master failed 3 times: check that "
                 "--curve-master-key is the master's public key and that the master uses CURVE")


def watch_handshakes(monitor: Callable[[], Any], running: Callable[[], bool], welcomed_once: Callable[[], bool],
                     refused: Callable[[str], None]) -> None:
    """Read handshake events until ``running()`` is False; call ``refused`` with the reason to exit."""
    failures = 0
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
            failures = 0
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            refused(REFUSED_KEY)
        else:
            failures += 1
            if failures >= 3 and not welcomed_once():
                refused(FAILED_THRICE)
