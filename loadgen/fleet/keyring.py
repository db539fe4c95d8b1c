"""A fleet's CURVE keys on disk: ``loadgen keys DIR`` makes them in one go; the master and each worker find
their part of them.

    DIR/master/master.key_secret    the master's keypair (mode 0600; stays on the master)
    DIR/master/allowed/*.key        the workers' public keys: the only peers the master lets in
    DIR/worker/master.key           the master's public key: the only master a worker talks to
    DIR/worker/worker.key_secret    the workers' keypair (one for the fleet, or DIR/worker-N/ each its own)

``DIR/worker`` (or ``DIR/worker-N``) is what a worker machine gets; it holds no master secret.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

from loadgen.fleet.security import CurveKeys, fingerprint, generate_keys, load_public
from loadgen.model.errors import UsageError

MASTER_PART, WORKER_PART, ALLOWED = "master", "worker", "allowed"
KEYS_ENV = "LOADGEN_KEYS"
MASTER_NAME = "master"


def default_keys_dir() -> str:
    """``$LOADGEN_KEYS``, else ``~/.config/loadgen/fleet``."""
    return os.environ.get(KEYS_ENV) or os.path.join(os.path.expanduser("~"), ".config", "loadgen", "fleet")


@dataclass(frozen=True)
class Fleet:
    """What ``create_fleet`` made."""

    root: str
    master_dir: str
    worker_dirs: list[str]
    master_fingerprint: str


def create_fleet(root: str, workers: int = 0, force: bool = False) -> Fleet:
    """The master's keypair and allow-list, and the workers' part: one shared worker keypair, or ``workers``
    keypairs (``DIR/worker-1`` …) so that each worker's id is bound to a key of its own."""
    master_dir = os.path.join(root, MASTER_PART)
    if os.path.exists(os.path.join(master_dir, f"{MASTER_NAME}.key_secret")) and not force:
        raise UsageError(f"{root!r} already holds a fleet's keys: use them, pick another directory, or pass "
                         "--force to replace them (every worker then needs the new ones)")
    try:
        for name in os.listdir(root) if force and os.path.isdir(root) else ():
            if name == MASTER_PART or name == WORKER_PART or name.startswith(WORKER_PART + "-"):
                shutil.rmtree(os.path.join(root, name))
        os.makedirs(root, mode=0o700, exist_ok=True)
        allowed = os.path.join(master_dir, ALLOWED)
        os.makedirs(allowed, mode=0o700, exist_ok=True)
        os.chmod(master_dir, 0o700)  # makedirs gives intermediate folders the umask's mode
        master_public, _ = generate_keys(master_dir, MASTER_NAME)
        names = [WORKER_PART] if workers <= 0 else [f"{WORKER_PART}-{i}" for i in range(1, workers + 1)]
        worker_dirs = []
        for name in names:
            directory = os.path.join(root, name)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            public, _ = generate_keys(directory, name)
            shutil.copyfile(master_public, os.path.join(directory, f"{MASTER_NAME}.key"))
            shutil.copyfile(public, os.path.join(allowed, f"{name}.key"))
            worker_dirs.append(directory)
    except OSError as exc:
        raise UsageError(f"cannot write keys into {root!r} ({exc.strerror or exc}): choose a writable directory") \
            from None
    return Fleet(root, master_dir, worker_dirs, fingerprint(load_public(master_public)))


def master_keys(directory: str) -> CurveKeys:
    """The master's keypair and allow-list from a keys directory (``DIR`` or ``DIR/master``)."""
    part = _part(directory, MASTER_PART, lambda d: os.path.isfile(os.path.join(d, f"{MASTER_NAME}.key_secret")))
    if part is None:
        raise UsageError(f"no master keys in {directory!r} (no master.key_secret): make a fleet's keys with "
                         f"'loadgen keys {directory}', or pass --insecure-no-auth on a network you trust")
    return CurveKeys.for_master(os.path.join(part, f"{MASTER_NAME}.key_secret"), os.path.join(part, ALLOWED))


def worker_keys(directory: str) -> CurveKeys:
    """A worker's keypair and the master's public key from a keys directory (``DIR``, ``DIR/worker``, or the
    one ``DIR/worker-N`` there is)."""
    part = _part(directory, WORKER_PART, lambda d: _worker_secret(d) is not None)
    if part is None:
        raise UsageError(f"no worker keys in {directory!r}: copy this worker's part of the fleet's keys there "
                         "(DIR/worker, or DIR/worker-N with --workers, made by 'loadgen keys DIR'), pass --keys "
                         "with that directory, or --insecure-no-auth on a network you trust")
    secret = _worker_secret(part)
    assert secret is not None
    master_public = os.path.join(part, f"{MASTER_NAME}.key")
    if not os.path.isfile(master_public):
        raise UsageError(f"{part!r} has no master.key: copy the master's public key there (DIR/master/master.key)")
    return CurveKeys.for_worker(secret, master_public)


def _part(directory: str, name: str, holds: Callable[[str], bool]) -> str | None:
    candidates = [directory, os.path.join(directory, name)]
    if name == WORKER_PART and os.path.isdir(directory):
        numbered = sorted(d for d in os.listdir(directory) if d.startswith(WORKER_PART + "-"))
        if len(numbered) == 1:
            candidates.append(os.path.join(directory, numbered[0]))
    return next((c for c in candidates if os.path.isdir(c) and holds(c)), None)


def _worker_secret(directory: str) -> str | None:
    secrets = sorted(n for n in os.listdir(directory) if n.endswith(".key_secret") and n != f"{MASTER_NAME}.key_secret")
    return os.path.join(directory, secrets[0]) if len(secrets) == 1 else None


def keys_for_master(keys_dir: str | None, secret_key: str | None, allow: str | None,
                    insecure: bool) -> CurveKeys | None:
    """The master's CURVE keys from its options; None only with ``--insecure-no-auth``. Without ``--keys``,
    the default directory is used, and made (with a line saying so) the first time."""
    if insecure:  # outranks --keys, which may come from the environment ($LOADGEN_KEYS)
        if secret_key or allow:
            raise UsageError("--insecure-no-auth turns CURVE off: drop it, or drop the --curve-* options")
        return None
    if secret_key or allow:  # explicit files outrank --keys (or $LOADGEN_KEYS)
        if not secret_key:
            raise UsageError("--curve-allow needs --curve-secret-key (the master's keypair)")
        return CurveKeys.for_master(secret_key, allow)
    directory = keys_dir or default_keys_dir()
    if keys_dir is None and not os.path.exists(directory):
        fleet = create_fleet(directory)
        print(f"loadgen master: made this fleet's keys in {directory} (master key {fleet.master_fingerprint}); "
              f"give each worker machine a copy of {fleet.worker_dirs[0]} as its --keys directory",
              file=sys.stderr, flush=True)
    return master_keys(directory)


def keys_for_worker(keys_dir: str | None, secret_key: str | None, master_key: str | None,
                    insecure: bool) -> CurveKeys | None:
    """A worker's CURVE keys from its options; None only with ``--insecure-no-auth``."""
    if insecure:  # outranks --keys, which may come from the environment ($LOADGEN_KEYS)
        if secret_key or master_key:
            raise UsageError("--insecure-no-auth turns CURVE off: drop it, or drop the --curve-* options")
        return None
    if secret_key or master_key:  # explicit files outrank --keys (or $LOADGEN_KEYS)
        if not (secret_key and master_key):
            raise UsageError("CURVE needs both --curve-secret-key and --curve-master-key")
        return CurveKeys.for_worker(secret_key, master_key)
    return worker_keys(keys_dir or default_keys_dir())


def insecure_warning(role: str, address: str) -> str:
    if role == "master":
        return (f"loadgen master: WARNING: --insecure-no-auth: no authentication, no encryption; anyone who "
                f"reaches {address} can join this fleet, read the script and send numbers into the report")
    return (f"loadgen worker: WARNING: --insecure-no-auth: this worker runs whatever script any machine "
            f"answering at {address} sends it")
