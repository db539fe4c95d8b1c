"""``--stream tcp://HOST:PORT``: publish every snapshot and the final report on a ZeroMQ PUB socket.

Two frames per message: the topic (``b"snapshot"`` or ``b"report"``) and the msgpack-encoded dict.
Subscribers that connect late miss earlier snapshots (PUB/SUB semantics); a slow subscriber loses
messages beyond the high-water mark instead of slowing the test down.
"""

from __future__ import annotations

from typing import Any

import msgpack
import zmq.green as zmq

from loadgen.model.errors import UsageError
from loadgen.outputs.serving import parse_listen

TOPIC_SNAPSHOT = b"snapshot"
TOPIC_REPORT = b"report"
SEND_HWM = 1000
CLOSE_LINGER_MS = 1000


def stream_endpoint(value: str) -> str:
    """``tcp://HOST:PORT``, ``HOST:PORT`` or ``ipc://PATH`` → a ZeroMQ endpoint to bind."""
    text = (value or "").strip()
    if text.startswith("ipc://") and len(text) > len("ipc://"):
        return text
    if "://" in text and not text.startswith("tcp://"):
        raise UsageError(f"--stream {value!r}: use tcp://HOST:PORT, e.g. --stream tcp://127.0.0.1:5558")
    host, port = parse_listen("--stream", text, 5558)
    if host in ("0.0.0.0", "*"):
        host = "*"
    elif ":" in host:
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=str)


class StreamOutput:
    describe = "snapshot stream (ZeroMQ PUB, msgpack)"

    def __init__(self, address: str) -> None:
        self.endpoint = stream_endpoint(address)
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, SEND_HWM)
        self.socket.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        try:
            self.socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            self.socket.close(linger=0)
            self.context.term()
            raise UsageError(f"--stream {address}: cannot bind {self.endpoint} ({exc}): "
                             "choose another address or port, e.g. --stream tcp://127.0.0.1:5558") from None
        self.url = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._closed = False

    def _send(self, topic: bytes, value: Any) -> None:
        if self._closed:
            return
        try:
            self.socket.send_multipart([topic, pack(value)], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # no room: drop rather than stall the test

    def on_snapshot(self, snapshot: dict) -> None:
        self._send(TOPIC_SNAPSHOT, snapshot)

    def on_report(self, report: dict) -> None:
        self._send(TOPIC_REPORT, report)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.socket.close(linger=CLOSE_LINGER_MS)
        self.context.term()
