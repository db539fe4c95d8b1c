"""`make demo`: the built-in target, a master and two workers on 127.0.0.1 for ~15 s, then the summary."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.environ.get("LOADGEN_DEMO_REPORT") or os.path.join(ROOT, "demo-report.json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo: the target did not start on port {port}")


def main() -> int:
    loadgen = [sys.executable, "-m", "loadgen"]
    target_port, master_port = free_port(), free_port()
    procs: list[subprocess.Popen] = []
    keys = tempfile.mkdtemp(prefix="loadgen-demo-keys-")  # secure as a real fleet: CURVE, keys made for it
    try:
        subprocess.run([*loadgen, "keys", keys], check=True, stdout=subprocess.DEVNULL)
        procs.append(subprocess.Popen([*loadgen, "target", "--port", str(target_port)], stdout=subprocess.DEVNULL))
        wait_port(target_port)
        print(f"demo: target on http://127.0.0.1:{target_port}, master on 127.0.0.1:{master_port}, 2 workers",
              flush=True)
        master = subprocess.Popen([*loadgen, "master", "-f", os.path.join(ROOT, "examples", "basic.py"),
                                   "-H", f"http://127.0.0.1:{target_port}", "-u", "50", "-r", "25", "-t", "15s",
                                   "--expect-workers", "2", "--bind", f"127.0.0.1:{master_port}",
                                   "--keys", os.path.join(keys, "master"),
                                   "--json", REPORT])
        procs.append(master)
        for _ in range(2):
            procs.append(subprocess.Popen([*loadgen, "worker", "--master", f"127.0.0.1:{master_port}",
                                           "--keys", os.path.join(keys, "worker")], stderr=subprocess.DEVNULL))
        code = master.wait(timeout=120)
        print(f"demo: report written to {os.path.relpath(REPORT)} (master exit status {code})")
        return 0 if code in (0, 1) else code
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(keys, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
