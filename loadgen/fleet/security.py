"""ZeroMQ CURVE keys: generation, loading, and the master's allow-list (a ZAP handler greenlet)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import gevent
import zmq
import zmq.auth
import zmq.green as gzmq
from zmq.utils import z85

from loadgen.model.errors import UsageError

log = logging.getLogger("loadgen.fleet.security")
ZAP_ENDPOINT = "inproc://zeromq.zap.01"


def generate_keys(directory: str, name: str) -> tuple[str, str]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` into ``directory``."""
    mask = os.umask(0o077)  # the secret is never readable by others, not even for an instant
    try:
        os.makedirs(directory, exist_ok=True)
        public, secret = zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(mask)
    os.chmod(public, 0o644)
    os.chmod(secret, 0o600)
    return public, secret


def fingerprint(public: bytes) -> str:
    """``SHA256:…`` of a public key's 32 bytes (Z85 text or raw), as SSH prints host keys."""
    digest = hashlib.sha256(_raw(public)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def id_suffix(public: bytes) -> str:
    """The end of every worker id under this key (48 bits of its hash): the master checks each frame's id
    against the key that sent it (``Router``), so no peer can speak under another's id."""
    return hashlib.sha256(_raw(public)).hexdigest()[:12]


def peer_id(base: str, keys: CurveKeys | None) -> str:
    """A worker's id: ``base`` and its key's `id_suffix` (with CURVE), or a random tag."""
    return f"{base}-{id_suffix(keys.public) if keys is not None else uuid.uuid4().hex[:4]}"


def _raw(public: bytes) -> bytes:
    return z85.decode(public) if len(public) == 40 else public


def load_public(path: str) -> bytes:
    """A certificate file's Z85 public key."""
    return _load(path, "key")[0]


def _load(path: str, what: str) -> tuple[bytes, bytes | None]:
    if not os.path.isfile(path):
        raise UsageError(f"{what} {path!r} not found: make keys with 'loadgen keys generate DIR --name NAME'")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{what} {path!r} is not a ZeroMQ certificate ({exc}): use 'loadgen keys generate'") from None
    return public, secret


@dataclass
class CurveKeys:
    """A peer's keypair, plus the master's public key (worker side) or the allowed workers (master side)."""

    public: bytes
    secret: bytes
    server_public: bytes | None = None
    allowed: set[bytes] = field(default_factory=set)

    @classmethod
    def for_master(cls, secret_path: str, allow_dir: str | None) -> CurveKeys:
        public, secret = _load(secret_path, "--curve-secret-key")
        if secret is None:
            raise UsageError(f"--curve-secret-key {secret_path!r} holds no secret key: pass the .key_secret file")
        if not allow_dir:
            raise UsageError("the master needs the workers' public keys: pass --curve-allow DIR (or --keys DIR, "
                             "made by 'loadgen keys DIR')")
        if not os.path.isdir(allow_dir):
            raise UsageError(f"--curve-allow {allow_dir!r} is not a directory of worker .key files")
        # certificates hold Z85 text; ZAP hands the handler the raw 32-byte key
        allowed = {z85.decode(_load(os.path.join(allow_dir, name), "worker key")[0])
                   for name in sorted(os.listdir(allow_dir)) if name.endswith(".key")}
        if not allowed:
            raise UsageError(f"--curve-allow {allow_dir!r} holds no worker .key file: copy each worker's public "
                             "NAME.key there (or make a fleet's keys with 'loadgen keys DIR')")
        return cls(public, secret, allowed=allowed)

    @classmethod
    def for_worker(cls, secret_path: str, master_public_path: str) -> CurveKeys:
        public, secret = _load(secret_path, "--curve-secret-key")
        if secret is None:
            raise UsageError(f"--curve-secret-key {secret_path!r} holds no secret key: pass the .key_secret file")
        server_public, _ = _load(master_public_path, "--curve-master-key")
        return cls(public, secret, server_public=server_public)

    def allow(self, public_path: str) -> None:
        """Let in the worker whose public key is in ``public_path`` (this master, in memory only)."""
        self.allowed.add(_raw(load_public(public_path)))

    def write_public(self, path: str) -> None:
        """Write this peer's public key as a certificate file (what a worker trusts: ``--curve-master-key``)."""
        with open(path, "w", encoding="ascii") as handle:
            handle.write(f'metadata\ncurve\n    public-key = "{self.public.decode("ascii")}"\n')

    @property
    def fingerprint(self) -> str:
        """This peer's own public key, as printed."""
        return fingerprint(self.public)

    @property
    def master_fingerprint(self) -> str:
        """The master's: this peer's own on the master; the key it trusts on a worker."""
        return fingerprint(self.server_public if self.server_public is not None else self.public)

    def apply_server(self, sock: Any) -> None:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.ZAP_DOMAIN, b"loadgen")

    def apply_client(self, sock: Any) -> None:
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)


class ZapHandler:
    """Answers ZAP requests: CURVE clients whose public key is allowed get in, with their
    key's `id_suffix` as the connection's User-Id; others are refused before they can send a frame.

    ``allowed`` holds raw 32-byte keys.
    """

    def __init__(self, context: Any, allowed: set[bytes]) -> None:
        self.allowed = allowed
        self.refused = 0
        self._reported: set[tuple[bytes, bytes]] = set()
        self.socket = context.socket(gzmq.REP)
        self.socket.linger = 0
        self.socket.bind(ZAP_ENDPOINT)
        self.greenlet = gevent.spawn(self._serve)

    def _serve(self) -> None:
        while True:
            try:
                frames = self.socket.recv_multipart()
            except gzmq.ZMQError:
                return
            try:
                reply = self._answer(frames)
            except Exception:  # noqa: BLE001 - never leave a ZAP request unanswered
                log.exception("ZAP request failed")
                reply = [frames[0] if frames else b"1.0", frames[1] if len(frames) > 1 else b"", b"500",
                         b"internal error", b"", b""]
            try:
                self.socket.send_multipart(reply)
            except gzmq.ZMQError:
                return

    def _answer(self, frames: list[bytes]) -> list[bytes]:
        version, request_id = frames[0], frames[1]
        address = frames[3] if len(frames) > 3 else b""
        mechanism = frames[5] if len(frames) > 5 else b""
        key = frames[6] if len(frames) > 6 else b""
        user = id_suffix(key) if len(key) == 32 else ""
        if mechanism == b"CURVE" and key in self.allowed:
            return [version, request_id, b"200", b"OK", user.encode(), b""]
        self.refused += 1
        if (address, key) not in self._reported and len(self._reported) < 1000:
            self._reported.add((address, key))
            why = "its key is not in the master's allowed keys (DIR/master/allowed from 'loadgen keys', or --curve-allow)"
            message = (f"loadgen master: refused a worker from {address.decode(errors='replace') or '?'} with CURVE "
                       f"key {fingerprint(key) if len(key) == 32 else 'none'}: {why}")
            print(message, file=sys.stderr, flush=True)
        return [version, request_id, b"400", b"key not allowed", b"", b""]

    def close(self) -> None:
        self.greenlet.kill(block=False)
        self.socket.close(linger=0)
