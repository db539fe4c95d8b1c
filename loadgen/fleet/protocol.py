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

PROTOCOL_VERSION = 3
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_HELLO_BYTES = 64 * 1024  # the most a peer that has not said hello may send: anything larger is not decoded
# what msgpack may allocate for one frame, checked before it allocates: a delta's columns hold at most 10,000
# rows (two names each); its counts and a shipped script's files are bytes
UNPACK_LIMITS = {"max_str_len": 1024 * 1024, "max_bin_len": MAX_FRAME_BYTES, "max_array_len": 100_000,
                 "max_map_len": 100_000, "max_ext_len": 0}


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
    session: str = ""  # new each time the worker drops its test; kept across reconnects while it holds one
    test_id: str = ""  # the test this worker still holds (fenced or running) when it reconnects


@dataclass
class Heartbeat(Message):
    type: ClassVar[str] = "heartbeat"
    state: str = "idle"
    users: int = 0
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    test_id: str = ""
    seq: int = 0  # answered by an Ack with the same number: that renews the worker's lease
    sent: float = 0.0  # the worker's clock when sent, echoed for its clock estimate
    applied: int = 0  # the version of the desired state it runs


@dataclass
class Stats(Message):
    """Deltas ``seq``..``last`` (``stats.wire.encode_delta``; usually one second, so ``last == seq``), measured
    from ``start`` to ``end`` on the master's clock (-1: unknown); ``final`` marks the last one of a test."""

    type: ClassVar[str] = "stats"
    test_id: str
    delta: dict[str, Any]
    final: bool = False
    run: str = ""  # the worker's run of this test: numbering starts at 1 in each
    seq: int = 0
    last: int = 0
    start: float = -1.0
    end: float = -1.0


@dataclass
class Started(Message):
    type: ClassVar[str] = "started"
    test_id: str
    ok: bool = True
    error: str = ""
    run: str = ""


@dataclass
class Warning_(Message):
    type: ClassVar[str] = "warning"
    kind: str
    message: str
    key: str = ""


@dataclass
class Event(Message):
    """Something the report must show with its interval (on the master's clock): a fence, a rejoin."""

    type: ClassVar[str] = "event"
    kind: str
    start: float
    end: float
    users: int = 0
    detail: str = ""


@dataclass
class Bye(Message):
    type: ClassVar[str] = "bye"
    reason: str = ""


@dataclass
class Custom(Message):
    """A script's own message (Locust's ``runner.send_message``), either way; ``report_to_master`` data goes
    to the master as ``name == REPORT``."""

    type: ClassVar[str] = "custom"
    name: str
    data: Any = None


REPORT = "loadgen:report_to_master"


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
    clock: float = 0.0  # the master's clock when sent
    lease: float = 2.0  # how long an answered heartbeat lets the worker run users
    histograms_every: int = 1  # deltas between the endpoint histograms it sends (stats.cadence)


@dataclass
class Target(Message):
    """Absolute user counts per class for this worker (closed model)."""

    type: ClassVar[str] = "target"
    test_id: str
    counts: dict[str, Any]
    spawn_rate: float
    version: int = 0  # desired-state version; the worker echoes the one it runs
    slot: int = 0  # this worker's index among ``slots``: its phases and spawns are offset by i/N
    slots: int = 1
    handover: float = 0.0  # seconds over which to give up the users above target, evenly (0: at once)


@dataclass
class Rate(Message):
    """This worker's share of the arrival rate and the user pool (open model)."""

    type: ClassVar[str] = "rate"
    test_id: str
    rate: float
    max_users: int
    pre_allocate: int = 0
    version: int = 0
    slot: int = 0  # this worker's index among ``slots``: its arrivals fall i/N of an interval after the grid
    slots: int = 1


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


@dataclass
class Ack(Message):
    """The master's answer to a heartbeat: renews the lease, samples the clock, acknowledges deltas up to
    ``stats``, and repeats the worker's desired state (``desired``: a Target or Rate as a map) until it runs it."""

    type: ClassVar[str] = "ack"
    seq: int
    sent: float = 0.0
    clock: float = 0.0
    stats: int = 0
    lease: float = 0.0
    test_id: str = ""
    master_id: str = ""
    desired: dict[str, Any] = field(default_factory=dict)


MESSAGES: dict[str, type[Message]] = {
    cls.type: cls
    for cls in (Hello, Heartbeat, Stats, Started, Warning_, Event, Bye, Welcome, Reject, Start, Target, Rate, Stop, Quit,
                MasterHeartbeat, Ack, Custom)
}
_FIELDS = {name: {f.name: f for f in dataclasses.fields(cls)} for name, cls in MESSAGES.items()}
_REQUIRED = {
    name: {f.name for f in fields.values()
           if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    for name, fields in _FIELDS.items()
}
_NAMES = {name: tuple(fields) for name, fields in _FIELDS.items()}
_TYPES = {bool: (bool,), int: (int,), float: (int, float), str: (str,), dict: (dict,)}


def _annotation(spec: dataclasses.Field[Any]) -> type:
    """The plain type a field's annotation names (``dict[str, Any]`` → dict); ``object`` for anything else."""
    return {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}.get(str(spec.type).split("[")[0],
                                                                                     object)


_EXPECTED: dict[str, dict[str, tuple[type, ...] | None]] = {
    name: {key: _TYPES.get(_annotation(spec)) for key, spec in fields.items()} for name, fields in _FIELDS.items()
}
"""The Python types each field of each message accepts (None: anything), worked out once."""


def encode(message: Message) -> bytes:
    data = {name: getattr(message, name) for name in _NAMES[message.type]}
    data["type"] = message.type
    frame: bytes = msgpack.packb(data, use_bin_type=True)
    return frame


def decode(frame: bytes) -> Message:
    """Bytes → message; ``FrameError`` for anything malformed."""
    if len(frame) > MAX_FRAME_BYTES:
        raise FrameError("frame too large")
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False, **UNPACK_LIMITS)
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
    types = _EXPECTED[name]
    missing = _REQUIRED[name] - data.keys()
    if missing:
        raise FrameError(f"{name}: missing {sorted(missing)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in types:
            continue  # newer peers may add fields
        expected = types[key]
        if expected is not None and (type(value) not in expected
                                     or (type(value) is float and not math.isfinite(value))):
            raise FrameError(f"{name}.{key}: wrong type {type(value).__name__}")
        values[key] = value
    return cls(**values)


def as_map(message: Message) -> dict[str, Any]:
    """A message as the map ``decode_map`` reads back (one message inside another)."""
    data = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    data["type"] = message.type
    return data


def decode_map(data: dict[str, Any]) -> Message:
    """A message carried inside another as a map; ``FrameError`` for anything malformed."""
    return decode(msgpack.packb(data, use_bin_type=True))

