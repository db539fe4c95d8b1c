"""Master/worker messages: small typed records, msgpack-encoded, with a protocol version.

Every frame is a msgpack map ``{"type": NAME, ...fields}``. ``decode`` never raises anything but
``ProtocolError``, so a malformed, unknown or hostile frame can be dropped and counted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ProtocolError(ValueError):
    """A frame that is not a valid message."""


@dataclass
class Message:
    type: ClassVar[str] = ""


# ---- worker → master --------------------------------------------------------------------------------------
@dataclass
class Hello(Message):
    type: ClassVar[str] = "hello"
    version: int
    worker_id: str
    host: str
    pid: int = 0
    processes: int = 1
    has_script: bool = False
    loadgen_version: str = ""


@dataclass
class Heartbeat(Message):
    type: ClassVar[str] = "heartbeat"
    state: str = "idle"
    users: int = 0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0


@dataclass
class Stats(Message):
    """One second's delta (``StatsDelta.to_dict()``); ``final`` marks the last one of a test."""

    type: ClassVar[str] = "stats"
    test_id: str
    delta: dict
    final: bool = False


@dataclass
class Started(Message):
    type: ClassVar[str] = "started"
    test_id: str
    ok: bool = True
    error: str = ""


@dataclass
class Warning_(Message):
    type: ClassVar[str] = "warning"
    kind: str
    message: str
    key: str = ""


@dataclass
class Bye(Message):
    type: ClassVar[str] = "bye"
    reason: str = ""


# ---- master → worker --------------------------------------------------------------------------------------
@dataclass
class Welcome(Message):
    type: ClassVar[str] = "welcome"
    version: int
    master_id: str = ""


@dataclass
class Reject(Message):
    type: ClassVar[str] = "reject"
    reason: str


@dataclass
class Start(Message):
    """Begin a test: options, the script (when the worker has none), and the first target."""

    type: ClassVar[str] = "start"
    test_id: str
    options: dict
    script_name: str = ""
    script_files: dict = field(default_factory=dict)


@dataclass
class Target(Message):
    """Absolute user counts per class for this worker (closed model)."""

    type: ClassVar[str] = "target"
    test_id: str
    counts: dict
    spawn_rate: float


@dataclass
class Rate(Message):
    """This worker's share of the arrival rate and the user pool (open model)."""

    type: ClassVar[str] = "rate"
    test_id: str
    rate: float
    max_users: int
    pre_allocate: int = 0


@dataclass
class Stop(Message):
    type: ClassVar[str] = "stop"
    test_id: str
    timeout: float = 10.0


@dataclass
class Quit(Message):
    type: ClassVar[str] = "quit"
    reason: str = ""


@dataclass
class MasterHeartbeat(Message):
    type: ClassVar[str] = "mheartbeat"
    test_id: str = ""


MESSAGES: dict[str, type[Message]] = {
    cls.type: cls
    for cls in (Hello, Heartbeat, Stats, Started, Warning_, Bye, Welcome, Reject, Start, Target, Rate, Stop, Quit,
                MasterHeartbeat)
}
_FIELDS = {name: {f.name: f for f in dataclasses.fields(cls)} for name, cls in MESSAGES.items()}
_REQUIRED = {
    name: {f.name for f in fields.values()
           if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    for name, fields in _FIELDS.items()
}
_TYPES = {bool: (bool,), int: (int,), float: (int, float), str: (str,), dict: (dict,)}


def encode(message: Message) -> bytes:
    data = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    data["type"] = message.type
    return msgpack.packb(data, use_bin_type=True)


def decode(frame: bytes) -> Message:
    """Bytes → message; ``ProtocolError`` for anything malformed."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError("frame too large")
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds
        raise ProtocolError(f"not msgpack: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a map")
    name = data.pop("type", None)
    cls = MESSAGES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {name!r}")
    fields = _FIELDS[name]
    missing = _REQUIRED[name] - data.keys()
    if missing:
        raise ProtocolError(f"{name}: missing {sorted(missing)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None:
            continue  # newer peers may add fields
        expected = _TYPES.get(_annotation(spec))
        if expected is not None and not isinstance(value, expected):
            raise ProtocolError(f"{name}.{key}: wrong type {type(value).__name__}")
        values[key] = value
    return cls(**values)


def _annotation(spec: dataclasses.Field) -> type | None:
    return {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}.get(str(spec.type))
