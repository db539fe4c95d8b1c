"""tinyproxy (Debian's) on 127.0.0.1, for ``proxies=`` tests: an HTTP proxy that also tunnels CONNECT.

`Tinyproxy(directory, auth=("user", "secret"))` writes a config (every CONNECT port allowed, clients from
127.0.0.1 only, optional Basic auth), starts ``tinyproxy -d`` in the foreground on a free port and waits
until it accepts. `.requests()` reads its log: the request line of every request it received, as
``"GET http://127.0.0.1:PORT/path HTTP/1.1"`` or ``"CONNECT 127.0.0.1:PORT HTTP/1.1"``; `.clear()` forgets
them. tinyproxy adds ``Via: 1.1 tinyproxy (tinyproxy/x.y)`` to what it forwards, so a target can tell a
proxied request from a direct one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from servers import free_port, stop_process, wait_accepting

_REQUEST = re.compile(r"Request \(file descriptor \d+\): (.+)$")
LOG_WAIT = 3.0  # tinyproxy writes its log line as it reads the request; allow for the write to land


def tinyproxy_binary() -> str:
    found = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None)
    if found is None:
        raise RuntimeError("tinyproxy is not installed: apt-get install -y tinyproxy (make test does it as root)")
    return found


class Tinyproxy:
    def __init__(self, directory: Path, auth: tuple[str, str] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = directory / "tinyproxy.log"
        self.auth = auth
        lines = [
            f"Port {self.port}", "Listen 127.0.0.1", "Timeout 30", f'LogFile "{self.log}"', "LogLevel Connect",
            "MaxClients 200", "Allow 127.0.0.1",
        ]
        if auth is not None:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        self.conf = directory / "tinyproxy.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self._skip = 0
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def start(self) -> Tinyproxy:
        self.proc = subprocess.Popen([tinyproxy_binary(), "-d", "-c", str(self.conf)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        wait_accepting("127.0.0.1", self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def _lines(self) -> list[str]:
        if not self.log.exists():
            return []
        found = (_REQUEST.search(line) for line in self.log.read_text(errors="replace").splitlines())
        return [m.group(1).strip() for m in found if m]

    def requests(self, expect: int = 0) -> list[str]:
        """The request lines received since the last `clear`; waits (bounded) until there are `expect`."""
        deadline = time.monotonic() + LOG_WAIT
        lines = self._lines()[self._skip:]
        while len(lines) < expect and time.monotonic() < deadline:
            time.sleep(0.05)
            lines = self._lines()[self._skip:]
        return lines

    def clear(self) -> None:
        self._skip = len(self._lines())

    def __enter__(self) -> Tinyproxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
