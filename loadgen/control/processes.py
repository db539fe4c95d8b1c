"""``--processes N`` on ``run`` and ``master``: N worker processes on this machine, one machine of the fleet.

``loadgen run --processes N`` is a master bound to loopback in this process plus one ``loadgen worker
--processes N`` child, over CURVE with keys made for the run; ``loadgen master --processes N`` adds the same
child to a master's own fleet (its key is allowed for this master only, in memory). Either way the report has
one row per process, as for any ``worker --processes N`` machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from types import TracebackType

from loadgen.fleet.keyring import create_fleet, master_keys
from loadgen.fleet.security import CurveKeys, generate_keys
from loadgen.model.options import TestOptions

GIVE_UP_AFTER = 60  # seconds a local worker waits for its master before it exits


class LocalWorkers:
    """The child ``loadgen worker --processes N`` of this master; stopped (and its keys removed) on exit."""

    def __init__(self, count: int, address: str, keys: CurveKeys | None) -> None:
        self.count = count
        self.address = address
        self.keys = keys
        self.directory = tempfile.mkdtemp(prefix="loadgen-processes-")
        self.log_path = os.path.join(self.directory, "workers.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "loadgen", "worker", "--master", self.address, "--processes", str(self.count),
                "--give-up-after", str(GIVE_UP_AFTER), *self._key_args()]
        with open(self.log_path, "wb") as log:
            # a session of its own: a Ctrl-C reaches the master only, which stops the workers in order
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)

    def _key_args(self) -> list[str]:
        if self.keys is None:
            return ["--insecure-no-auth"]
        public, secret = generate_keys(self.directory, "local-worker")
        self.keys.allow(public)
        master_public = os.path.join(self.directory, "master.key")
        self.keys.write_public(master_public)
        return ["--curve-secret-key", secret, "--curve-master-key", master_public]

    def stop(self, failed: bool = False) -> None:
        """Stop the child; when it failed (or the test could not start), show the end of its log first."""
        proc = self.proc
        if failed or (proc is not None and proc.poll() not in (None, 0)):
            self._show_log()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _show_log(self) -> None:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                tail = log.read()[-2000:].strip()
        except OSError:
            return
        if tail:
            print(f"loadgen: the local worker processes said:\n{tail}", file=sys.stderr, flush=True)

    def __enter__(self) -> LocalWorkers:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop(failed=exc is not None and not isinstance(exc, SystemExit))


def local_address(bind: str) -> str:
    """Where a worker on this machine reaches a master bound to ``bind`` (a wildcard host is loopback)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_processes(options: TestOptions, count: int) -> int:
    """``loadgen run --processes N``: a loopback master here, N worker processes beside it."""
    from loadgen.control.remote import FleetOptions, run_master

    options.validate()
    directory = tempfile.mkdtemp(prefix="loadgen-run-keys-")
    try:
        create_fleet(directory)
        keys = master_keys(directory)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        bind = f"127.0.0.1:{port}"
        with LocalWorkers(count, bind, keys):
            return run_master(options, FleetOptions(bind=bind, keys=keys), local=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
