"""Master/worker messages: small typed records, msgpack-encoded, with a protocol version.

Every frame is a msgpack map ``{"type": NAME, ...fields}``. ``decode`` never raises anything but
``ProtocolError``, so a malformed, unknown or hostile frame can be dropped and counted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ProtocolError(ValueError):
    """A frame that is not a valid message."""


class VersionMismatch(ProtocolError):
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
        raise ProtocolError(f"unknown message type {name!r}"[:200])
    if name in ("hello", "welcome") and "version" in data and data["version"] != PROTOCOL_VERSION:
        raise VersionMismatch(data["version"] if isinstance(data["version"], (int, str)) else "?", name)
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
        if expected is not None and (type(value) not in expected
                                     or (type(value) is float and not math.isfinite(value))):
            raise ProtocolError(f"{name}.{key}: wrong type {type(value).__name__}")
        values[key] = value
    return cls(**values)


def _annotation(spec: dataclasses.Field) -> type | None:
    return {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}.get(str(spec.type))


# ---- a worker's delta, checked before the master merges it ------------------------------------------------
_MAX_BUCKET = 2239  # histogram.bucket_of(histogram.MAX_VALUE)
_MAX_ROWS = 10_000
_INT = {int}
_NUMBER = {int, float}


def check_delta(delta: dict) -> None:
    """Raise ``ProtocolError`` unless ``delta`` is a well-formed ``StatsDelta.to_dict()``.

    The master merges deltas into the report: anything that could raise there (or blow memory up, such
    as a huge histogram bucket index) must be refused here, where the frame can be dropped and counted.
    """
    try:
        entries, errors, counters = delta["e"], delta["x"], delta["k"]
        if type(entries) is not list or type(errors) is not list or type(counters) is not dict:
            raise ProtocolError("stats: e/x/k of the wrong type")
        if len(entries) > _MAX_ROWS or len(errors) > _MAX_ROWS or len(counters) > 100:
            raise ProtocolError("stats: too many rows")
        for key in ("u", "d", "p"):
            _count(delta[key], key)
        for key in ("cpu", "rss", "t"):
            value = delta[key]
            if type(value) not in _NUMBER or not math.isfinite(value):
                raise ProtocolError(f"stats: {key} is not a number")
        for entry in entries:
            if type(entry) is not dict or type(entry["m"]) is not str or type(entry["n"]) is not str:
                raise ProtocolError("stats: bad entry")
            for key in ("r", "f", "b"):
                _count(entry[key], key)
            _check_histogram(entry["h"])
            if "s" in entry:
                _check_histogram(entry["s"])
        if "T" in delta:
            _check_histogram(delta["T"])
        for row in errors:
            if (type(row) is not list or len(row) != 4 or type(row[0]) is not str or type(row[1]) is not str
                    or type(row[2]) is not str):
                raise ProtocolError("stats: bad error row")
            _count(row[3], "error count")
        for key, value in counters.items():
            if type(key) is not str:
                raise ProtocolError("stats: bad counter name")
            _count(value, key, signed=True)
    except (KeyError, TypeError, IndexError):
        raise ProtocolError("stats: malformed delta") from None


def _count(value: Any, what: str, signed: bool = False) -> None:
    if type(value) is not int or (value < 0 and not signed):
        raise ProtocolError(f"stats: {what} is not a count")


def _check_histogram(hist: Any) -> None:
    if type(hist) is not dict:
        raise ProtocolError("stats: bad histogram")
    buckets, counts = hist["b"], hist["c"]
    if type(buckets) is not list or type(counts) is not list or len(buckets) != len(counts):
        raise ProtocolError("stats: bad histogram buckets")
    for key in ("n", "s", "lo", "hi"):
        _count(hist[key], "histogram " + key)
    if buckets:
        # bucket indexes feed shifts in the report: integers in range, strictly (C-speed passes: this runs for
        # every endpoint of every worker every second); counts only need to add up (a float count is harmless)
        if not set(map(type, buckets)) <= _INT or min(buckets) < 0 or max(buckets) > _MAX_BUCKET:
            raise ProtocolError("stats: histogram bucket out of range")
        if min(counts) < 0:
            raise ProtocolError("stats: negative histogram count")
    if sum(counts) != hist["n"] or hist["lo"] > hist["hi"]:
        raise ProtocolError("stats: inconsistent histogram")
