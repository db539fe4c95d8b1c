"""A worker's socket to its master (or to its machine's hub): a DEALER, redialled on demand, that sends
without blocking and receives frames one at a time (the mirror of the master's ``Router``)."""

from __future__ import annotations

import logging
from typing import Any

import gevent
import zmq.green as zmq

from loadgen.fleet.link import worker_socket
from loadgen.fleet.protocol import Message, encode
from loadgen.fleet.security import CurveKeys

log = logging.getLogger("loadgen.fleet.dealer")


class Dealer:
    def __init__(self, endpoint: str, identity: str, keys: CurveKeys | None) -> None:
        self.context = zmq.Context()
        self.endpoint = endpoint
        self.identity = identity
        self.keys = keys
        self.socket: Any = None
        self.monitor: Any = None  # CURVE handshake events (with keys)

    def connect(self) -> None:
        """A fresh connection (what was queued on the old one is dropped: the outbox resends it)."""
        self.close(linger=0)
        self.socket, self.monitor = worker_socket(self.context, self.endpoint, self.identity, self.keys)

    def send(self, message: Message) -> bool:
        """Queue a frame; False when it could not be (no connection: IMMEDIATE)."""
        try:
            self.socket.send(encode(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            return False  # the master is away; heartbeats resume when it is back
        except zmq.ZMQError as exc:
            log.debug("send failed: %s", exc)
            return False
        return True

    def receive(self, timeout_ms: int) -> bytes | None:
        """The next frame, or None after ``timeout_ms`` (or a transient socket error)."""
        sock = self.socket
        try:
            if not sock.poll(timeout_ms):
                return None
            frame: bytes = sock.recv(flags=zmq.NOBLOCK)
            return frame
        except zmq.Again:
            return None
        except zmq.ZMQError:
            gevent.sleep(0.1)  # a socket being replaced: try again shortly
            return None

    def close(self, linger: int) -> None:
        """Close the socket (and its CURVE monitor), letting queued frames go for ``linger`` ms."""
        if self.monitor is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(linger=0)
            self.monitor = None
        if self.socket is not None:
            self.socket.close(linger=linger)
            self.socket = None
