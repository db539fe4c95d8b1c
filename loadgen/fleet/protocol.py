"""Master/worker messages: small typed records, msgpack-encoded, with a protocol version.

Every frame is a msgpack map ``{"type": NAME, ...fields}``. ``decode`` never raises anything but
``FrameError``, so a malformed, unknown or hostile frame can be dropped and counted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024


class FrameError(ValueError):
    """A frame that is not a valid message."""


class VersionMismatch(FrameError):
    """A ``hello`` (or ``welcome``) from a peer that speaks another protocol version."""

    def __init__(self, version: Any, message_type: str) -> None:
        super().__init__(f"{message_type} with protocol version {version!r}, expected {PROTOCOL_VERSION}")
        self.version = version
        self.message_type = message_type


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
    session: str = ""  # new each time the worker (re)introduces itself with no test running


@dataclass
class Heartbeat(Message):
    type: ClassVar[str] = "heartbeat"
    state: str = "idle"
    users: int = 0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    test_id: str = ""


@dataclass
class Stats(Message):
    """One second's delta (``stats.wire.encode_delta``); ``final`` marks the last one of a test."""

    type: ClassVar[str] = "stats"
    test_id: str
    delta: dict[str, Any]
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
    options: dict[str, Any]
    script_name: str = ""
    script_files: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target(Message):
    """Absolute user counts per class for this worker (closed model)."""

    type: ClassVar[str] = "target"
    test_id: str
    counts: dict[str, Any]
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
    master_id: str = ""  # a worker that sees another master's id re-introduces itself


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
    frame: bytes = msgpack.packb(data, use_bin_type=True)
    return frame


def decode(frame: bytes) -> Message:
    """Bytes → message; ``FrameError`` for anything malformed."""
    if len(frame) > MAX_FRAME_BYTES:
        raise FrameError("frame too large")
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds
        raise FrameError(f"not msgpack: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise FrameError("not a map")
    name = data.pop("type", None)
    cls = MESSAGES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise FrameError(f"unknown message type {name!r}"[:200])
    if name in ("hello", "welcome") and "version" in data and data["version"] != PROTOCOL_VERSION:
        raise VersionMismatch(data["version"] if isinstance(data["version"], (int, str)) else "?", name)
    fields = _FIELDS[name]
    missing = _REQUIRED[name] - data.keys()
    if missing:
        raise FrameError(f"{name}: missing {sorted(missing)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None:
            continue  # newer peers may add fields
        expected = _TYPES.get(_annotation(spec))
        if expected is not None and (type(value) not in expected
                                     or (type(value) is float and not math.isfinite(value))):
            raise FrameError(f"{name}.{key}: wrong type {type(value).__name__}")
        values[key] = value
    return cls(**values)


def _annotation(spec: dataclasses.Field[Any]) -> type:
    """The plain type a field's annotation names (``dict[str, Any]`` → dict); ``object`` for anything else."""
    return {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}.get(str(spec.type).split("[")[0],
                                                                                     object)
