"""ZeroMQ CURVE keys: generation, loading, and the master's allow-list (a ZAP handler greenlet)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import gevent
import zmq
import zmq.auth
import zmq.green as gzmq

from loadgen.errors import UsageError

log = logging.getLogger("loadgen.security")
ZAP_ENDPOINT = "inproc://zeromq.zap.01"


def generate_keys(directory: str, name: str) -> tuple[str, str]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    public, secret = zmq.auth.create_certificates(directory, name)
    os.chmod(secret, 0o600)
    return public, secret


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
        allowed: set[bytes] = set()
        if allow_dir:
            if not os.path.isdir(allow_dir):
                raise UsageError(f"--curve-allow {allow_dir!r} is not a directory of worker .key files")
            for name in sorted(os.listdir(allow_dir)):
                if name.endswith(".key"):
                    allowed.add(_load(os.path.join(allow_dir, name), "worker key")[0])
        return cls(public, secret, allowed=allowed)

    @classmethod
    def for_worker(cls, secret_path: str, master_public_path: str) -> CurveKeys:
        public, secret = _load(secret_path, "--curve-secret-key")
        if secret is None:
            raise UsageError(f"--curve-secret-key {secret_path!r} holds no secret key: pass the .key_secret file")
        server_public, _ = _load(master_public_path, "--curve-master-key")
        return cls(public, secret, server_public=server_public)

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
    """Answers ZAP requests: CURVE clients whose public key is allowed get in; others are refused."""

    def __init__(self, context: Any, allowed: set[bytes]) -> None:
        self.allowed = allowed
        self.refused = 0
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
            version, request_id = frames[0], frames[1]
            mechanism = frames[5] if len(frames) > 5 else b""
            key = frames[6] if len(frames) > 6 else b""
            ok = mechanism == b"CURVE" and (not self.allowed or key in self.allowed)
            if not ok:
                self.refused += 1
                log.warning("refused a worker whose CURVE key is not allowed")
            status = (b"200", b"OK") if ok else (b"400", b"key not allowed")
            self.socket.send_multipart([version, request_id, status[0], status[1], b"", b""])

    def close(self) -> None:
        self.greenlet.kill(block=False)
        self.socket.close(linger=0)
