"""The master's socket: a ROUTER (with its CURVE authenticator) that hands each frame to the master and
sends without ever blocking."""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Callable

import gevent
import zmq as plain_zmq
import zmq.green as zmq

from loadgen.fleet.link import ROUTE_SECRET, bind_endpoint, master_socket, printable
from loadgen.fleet.protocol import Message, encode
from loadgen.fleet.security import CurveKeys, ZapHandler

log = logging.getLogger("loadgen.fleet.router")
RECEIVE_BATCH = 64  # frames handled before the loop lets the other greenlets run
RECEIVE_EVERY = 0.01  # seconds between looks at the socket once it is empty: a large fleet's frames arrive
# every half millisecond, and one look takes them all; liveness and answers wait at most this long
MAX_IMPOSTORS = 100  # ids named once each
ROUTE_SECRET_BYTES = ROUTE_SECRET.encode()
_NOBLOCK = int(plain_zmq.NOBLOCK)  # a plain int: flag enums cost an enum operation per use


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
    """The ROUTER is a plain pyzmq socket, never waited on: the receive loop takes what is queued and sleeps
    between looks, and sends never block. The green wrapper's per-call event bookkeeping (an event watcher
    call, enum flag arithmetic and a timer per wait) was a fifth of a large fleet's master."""

    def __init__(self, bind: str, keys: CurveKeys | None) -> None:
        raise_file_limit()
        self.context = zmq.Context()
        self.zap: ZapHandler | None = ZapHandler(self.context, keys.allowed) if keys is not None else None
        self.endpoint = bind_endpoint(bind)
        self.socket = master_socket(self.context, bind, self.endpoint, keys, socket_class=plain_zmq.Socket)
        self.impostor_frames = 0  # frames under an id their connection's key does not own (dropped)
        self.impostors: set[bytes] = set()
        self._marks: dict[str, bytes] = {}  # User-Id → the end of the ids it may use

    def send(self, identity: bytes, message: Message) -> None:
        try:
            self.socket.send_multipart([identity, encode(message)], flags=_NOBLOCK)
        except plain_zmq.ZMQError as exc:
            log.debug("send to %s failed: %s", printable(identity), exc)

    def receive_loop(self, on_frames: Callable[[list[bytes]], None]) -> None:
        """Hand every multipart frame to ``on_frames`` until the socket is closed; with CURVE, only frames whose
        id ends with their connection's key (`vouched`): nothing else is decoded."""
        sock = self.socket
        if self.zap is None:
            take = sock.recv_multipart
        else:
            def take(flags: int) -> list[bytes] | None:
                return self.vouched(sock.recv_multipart(flags, copy=False))
        while not sock.closed:
            try:
                while True:
                    for _ in range(RECEIVE_BATCH):
                        frames = take(_NOBLOCK)
                        if frames is not None:
                            on_frames(frames)
                    gevent.sleep(0)
            except plain_zmq.Again:
                pass
            except plain_zmq.ZMQError:
                if sock.closed:
                    return
            gevent.sleep(RECEIVE_EVERY)

    def vouched(self, parts: list[plain_zmq.Frame]) -> list[bytes] | None:
        """The frame's parts if its id (the first part, ``ID#SECRET``) ends with the id suffix of the key its
        connection was authenticated with (the ZAP handler's User-Id); else None: counted and named once."""
        identity = parts[0].bytes
        try:
            user = str(parts[-1].get("User-Id"))
        except Exception:  # noqa: BLE001 - no User-Id: not vouched for by our ZAP handler
            user = ""
        mark = self._marks.get(user)
        if mark is None and user:
            mark = self._marks[user] = f"-{user}".encode()
        if mark is not None and identity.split(ROUTE_SECRET_BYTES, 1)[0].endswith(mark):
            return [identity, *(part.bytes for part in parts[1:])]
        self.impostor_frames += 1
        if identity not in self.impostors and len(self.impostors) < MAX_IMPOSTORS:
            self.impostors.add(identity)
            print(f"loadgen master: dropped frames under worker id {printable(identity)}: its connection's key "
                  f"(id suffix {user or 'none'}) is another worker's, or it runs a loadgen older than this master",
                  file=sys.stderr, flush=True)
        return None

    @property
    def refused(self) -> int:
        """Connections CURVE refused (their key is not allowed)."""
        return self.zap.refused if self.zap is not None else 0

    def close(self) -> None:
        if self.zap is not None:
            self.zap.close()
        self.socket.close(linger=500)
