"""The ZeroMQ link: the master's ROUTER and each worker's DEALER, set up the same way every time, and the
addresses they use."""

from __future__ import annotations

import secrets
from typing import Any

import zmq.green as zmq

from loadgen.fleet.protocol import MAX_FRAME_BYTES
from loadgen.fleet.security import CurveKeys
from loadgen.model.addresses import parse_host_port
from loadgen.model.errors import UsageError

DEFAULT_PORT = 5557
ZMTP_HEARTBEAT_MS = 1000  # ZeroMQ's own pings on an idle link
ZMTP_TIMEOUT_MS = 5000  # a link with no traffic (not even pings) this long is dropped and redialled
CONNECT_TIMEOUT_MS = 2000  # one dial attempt; else a long cut leaves the rejoin waiting on SYN back-off
RECONNECT_MAX_MS = 2000


def transport_liveness(sock: Any) -> None:
    """TCP keepalive and ZMTP heartbeats on a socket: a dead link is noticed and redialled in seconds."""
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 10)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, 2)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, 3)
    sock.setsockopt(zmq.HEARTBEAT_IVL, ZMTP_HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, ZMTP_TIMEOUT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TTL, ZMTP_TIMEOUT_MS)
HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_SUCCEEDED)


def master_socket(context: Any, bind: str, endpoint: str, keys: CurveKeys | None, socket_class: Any = None) -> Any:
    """The master's ROUTER, bound; a one-line UsageError when the address cannot be had."""
    sock = context.socket(zmq.ROUTER, socket_class=socket_class)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a worker reconnecting under its id takes its place
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.setsockopt(zmq.SNDHWM, 10_000)
    transport_liveness(sock)
    if keys is not None:
        keys.apply_server(sock)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise UsageError(f"cannot listen on {bind} ({exc}): choose another --bind address or port") from None
    return sock


def worker_socket(context: Any, endpoint: str, worker_id: str, keys: CurveKeys | None) -> tuple[Any, Any]:
    """A worker's DEALER, connecting, and (with CURVE) a monitor socket that reports handshake outcomes."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # nothing queues for a master that is not there
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.RCVHWM, 1000)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.IDENTITY, worker_id.encode())
    transport_liveness(sock)
    sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)
    sock.setsockopt(zmq.RECONNECT_IVL, 200)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
    monitor = None
    if keys is not None:
        keys.apply_client(sock)
        monitor = sock.get_monitor_socket(HANDSHAKE_EVENTS)
    sock.connect(endpoint)
    return sock, monitor


def bind_endpoint(bind: str) -> str:
    """``--bind HOST:PORT`` (or ``HOST``) as a ZeroMQ endpoint; a wildcard host binds every interface."""
    try:
        return parse_host_port(bind, default_port=DEFAULT_PORT).zmq_bind()
    except ValueError as exc:
        raise UsageError(f"--bind {bind!r}: {exc}; use HOST:PORT, e.g. 0.0.0.0:5557") from None


ROUTE_SECRET = "#"  # a worker's routing id is ``ID#SECRET``: the id is shown, the secret never


def routing_id(worker_id: str) -> str:
    """The id this process connects under: its shown id and a secret only the master learns (in the CURVE
    handshake), so that no other peer can claim its route (ROUTER_HANDOVER hands a route to whoever connects
    under its id)."""
    return f"{worker_id}{ROUTE_SECRET}{secrets.token_hex(8)}"


def shown_id(identity: bytes) -> str:
    """A routing id without its secret: the worker's id in rows, logs and the API."""
    return identity.decode("utf-8", "replace").split(ROUTE_SECRET, 1)[0]


def printable(identity: bytes) -> str:
    """A peer id fit for a log line, whatever bytes it is made of."""
    text = identity.decode("utf-8", "replace")[:100]
    return "".join(c if c.isprintable() else "?" for c in text) or "?"


def parse_master_address(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[v6]:PORT``."""
    try:
        address = parse_host_port(text, default_port=DEFAULT_PORT)
    except ValueError as exc:
        raise UsageError(f"--master {text!r}: {exc}; use e.g. --master 10.0.1.5 or 10.0.1.5:5557") from None
    return address.host, address.port
