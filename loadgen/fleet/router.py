"""The master's socket: a ROUTER (with its CURVE authenticator) that hands each frame to the master and
sends without ever blocking."""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable

import gevent
import zmq as plain_zmq
import zmq.green as zmq

from loadgen.fleet.link import bind_endpoint, master_socket, printable
from loadgen.fleet.protocol import Message, encode
from loadgen.fleet.security import CurveKeys, ZapHandler

log = logging.getLogger("loadgen.fleet.router")
RECEIVE_BATCH = 64  # frames taken without waiting before the loop waits (and lets others run) again


def raise_file_limit() -> None:
    """A connection per worker is a file per worker: lift the soft open-files limit to the hard one (1,024 by
    default on Linux, too few for a large fleet)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class Router:
    def __init__(self, bind: str, keys: CurveKeys | None) -> None:
        raise_file_limit()
        self.context = zmq.Context()
        self.zap: ZapHandler | None = ZapHandler(self.context, keys.allowed) if keys is not None else None
        self.endpoint = bind_endpoint(bind)
        self.socket = master_socket(self.context, bind, self.endpoint, keys)

    def send(self, identity: bytes, message: Message) -> None:
        try:
            self.socket.send_multipart([identity, encode(message)], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", printable(identity), exc)

    def receive_loop(self, on_frames: Callable[[list[bytes]], None]) -> None:
        """Hand every multipart frame to ``on_frames`` until the socket is closed. It waits the green way, then
        takes whatever else is queued straight from pyzmq (a thousand hosts' frames a second: the green
        wrapper's per-call bookkeeping is a tenth of a master's time)."""
        sock = self.socket
        take = plain_zmq.Socket.recv_multipart
        while True:
            try:
                on_frames(sock.recv_multipart(copy=True))
                for _ in range(RECEIVE_BATCH):
                    on_frames(take(sock, plain_zmq.NOBLOCK))
            except plain_zmq.Again:
                continue
            except zmq.ZMQError:
                if sock.closed:
                    return
                gevent.sleep(0.01)

    @property
    def refused(self) -> int:
        """Connections CURVE refused (their key is not allowed)."""
        return self.zap.refused if self.zap is not None else 0

    def close(self) -> None:
        if self.zap is not None:
            self.zap.close()
        self.socket.close(linger=500)
