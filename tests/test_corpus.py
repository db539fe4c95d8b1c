"""Bad input never hangs loadgen and never shows a traceback: broken scripts and hostile options end in one
line on stderr with exit 2 (usage) or 3 (script); hostile responses end as counted failures in the report.

Scripts live in tests/corpus/ as ``NAME.py.case`` (so that linters and pytest leave them alone) and are
copied to ``NAME.py`` before each run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import REPO, start_target, stop_process

CORPUS = Path(__file__).resolve().parent / "corpus"
WEB = str(CORPUS / "web.py")
EXIT_USAGE, EXIT_SCRIPT = 2, 3


def run_loadgen(*args: str, timeout: float = 30.0, env: dict[str, str] | None = None,
                cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "loadgen", "run", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or REPO, stdin=subprocess.DEVNULL)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str | None:
    """None if ``proc`` ended with exit ``code`` and one ``loadgen: error:`` line naming ``needles``."""
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != code or "Traceback" in proc.stderr or len(lines) != 1:
        return f"exit {proc.returncode}, stderr {proc.stderr[-600:]!r}"
    if not lines[0].startswith("loadgen: error: ") or not all(n in lines[0] for n in needles):
        return f"unexpected message {lines[0]!r}"
    return None


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    problem = one_line_error(proc, code, *needles)
    assert problem is None, problem


def assert_all(cases: list[tuple[str, Callable[[], str | None]]]) -> None:
    """Run independent subprocess cases side by side; report every case that went wrong."""
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: (case[0], case[1]()), cases))
    problems = [f"{name}: {problem}" for name, problem in results if problem]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    proc, url = start_target()
    yield url
    stop_process(proc)


# ---- broken scripts ----------------------------------------------------------------------------------------
SCRIPTS = [
    ("syntax_error", "line 6"),
    ("import_error", "loadgen_no_such_module"),
    ("no_user_class", "defines no user class"),
    ("no_tasks", "has no tasks"),
    ("raises_at_import", "KeyError"),
    ("exit_at_import", "exit()"),
    ("empty", "defines no user class"),
    ("binary", "not Python source"),
]


def test_broken_scripts(tmp_path: Path) -> None:
    def case(script: str, *needles: str) -> Callable[[], str | None]:
        def run() -> str | None:
            proc = run_loadgen("-f", script, "-H", "http://127.0.0.1:9", "-t", "1s", "-q", timeout=20)
            return one_line_error(proc, EXIT_SCRIPT, *needles)
        return run

    cases = []
    for name, needle in SCRIPTS:
        shutil.copyfile(CORPUS / f"{name}.py.case", tmp_path / f"{name}.py")
        cases.append((name, case(str(tmp_path / f"{name}.py"), needle)))
    for path in ("no_init_dir", "missing.py", "no_init_dir/README.txt"):
        cases.append((path, case(str(CORPUS / path), path.split("/")[0])))
    cases.append(("no -f", case("", "-f")))
    assert_all(cases)


# ---- hostile options ---------------------------------------------------------------------------------------
OPTIONS = [
    (["-u", "abc"], "--users"),
    (["-u", "-5"], "--users"),
    (["-r", "0"], "--spawn-rate"),
    (["-t", "5x"], "5x"),
    (["-t", "0s"], "run-time"),
    (["-H", "ftp://x"], "ftp://x"),
    (["-H", "http://"], "http://"),
    (["-H", "http://127.0.0.1:99999"], "bad port"),
    (["-H", "https://[::1"], "[::1"),
    (["-H", "http://exa mple.com"], "whitespace"),
    (["-H", "http://127.0.0.1:8080\r\nX-Injected: 1"], "control"),
    (["--stages", "10s"], "--stages"),
    (["--stages", "abc:10"], "--stages"),
    (["--threshold", "p99<<3"], "p99<<3"),
    (["--threshold", ""], "threshold"),
    (["--no-such-option"], "--no-such-option"),
    (["--pool", "shared:0"], "--pool"),
    (["--pool", "banana"], "--pool"),
    (["--ca-bundle", "/nonexistent/ca.pem"], "--ca-bundle"),
    (["--client-cert", "/nonexistent/cert.pem"], "--client-cert"),
    (["--stop-timeout", "-1"], "--stop-timeout"),
    (["--dns-server", "nonsense"], "--dns-server"),
    (["--max-rss", "0"], "--max-rss"),
    (["--arrival-rate", "-3"], "--arrival-rate"),
    (["--dns-select", "fastest"], "--dns-select"),
]


def test_hostile_options() -> None:
    def case(args: list[str], code: int, needle: str) -> Callable[[], str | None]:
        def run() -> str | None:
            base = ["-f", WEB, "-t", "500ms", "-q"]
            if "-H" not in args and "--no-host" not in args:
                base += ["-H", "http://127.0.0.1:9"]
            proc = run_loadgen(*base, *[a for a in args if a != "--no-host"], timeout=20)
            return one_line_error(proc, code, needle)
        return run

    cases = [(" ".join(args), case(args, EXIT_USAGE, needle)) for args, needle in OPTIONS]
    cases.append(("unknown user class", case(["NoSuchUser"], EXIT_SCRIPT, "NoSuchUser")))
    cases.append(("no host", case(["--no-host"], EXIT_USAGE, "no host")))
    assert_all(cases)


def test_absurd_user_count_ends_cleanly() -> None:
    proc = run_loadgen("-f", WEB, "-H", "http://127.0.0.1:9", "-t", "500ms", "-q", "-u", "9" * 23, timeout=20)
    assert "Traceback" not in proc.stderr and proc.returncode in (1, EXIT_USAGE), proc.stderr


# ---- hostile targets and responses ------------------------------------------------------------------------
def _report(proc: subprocess.CompletedProcess[str], path: Path) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
    return json.loads(path.read_text())


def _row(report: dict, name: str = "corpus") -> dict:
    rows = [e for e in report["endpoints"] if e["name"] == name]
    assert rows, report["endpoints"]
    return rows[0]


def _errors(report: dict) -> str:
    return " | ".join(e["error"] for e in report["errors"])


def _blackhole() -> tuple[socket.socket, list[socket.socket], int]:
    """A loopback port whose accept queue is full: further SYNs are dropped, so connects time out.
    (Loopback only: no test sends anything to an address outside this machine.)"""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.2)
    return server, fillers, port


def test_odd_urls_become_failures(tmp_path: Path) -> None:
    """Nothing listens, a name that cannot resolve (through a DNS server on loopback that is not there, never
    the machine's resolver), a base path with query and fragment, a port that never completes a connect:
    every request fails, and the run ends on time."""
    server, fillers, blackhole_port = _blackhole()
    dead_dns = free_port_udp()

    def case(index: int, host: str, extra: tuple[str, ...]) -> Callable[[], str | None]:
        def run() -> str | None:
            out = tmp_path / f"r{index}.json"
            started = time.monotonic()
            # each request gives up after 0.5 s, well inside the run time plus the stop timeout, however slowly
            # the machine starts the users (the script's own timeout overrides --connect-timeout)
            proc = run_loadgen("-f", WEB, "-H", host, "-u", "2", "-t", "1s", "-q", "--json", str(out),
                               "--connect-timeout", "0.5", "--stop-timeout", "3", *extra, timeout=30,
                               env={"CORPUS_TIMEOUT": "0.5"})
            if time.monotonic() - started > 12 or "Traceback" in proc.stderr or proc.returncode != 1:
                return f"exit {proc.returncode} after {time.monotonic() - started:.1f} s: {proc.stderr[-300:]!r}"
            totals = json.loads(out.read_text())["totals"]
            return None if totals["failures"] == totals["requests"] > 0 else f"totals {totals}"
        return run

    cases = [("http://127.0.0.1:9", ()),
             ("http://no-such-host.loadgen.test", ("--dns-server", f"127.0.0.1:{dead_dns}")),
             ("http://127.0.0.1:9/base?q=1#frag", ()),
             (f"http://127.0.0.1:{blackhole_port}", ())]
    try:
        assert_all([(host, case(i, host, extra)) for i, (host, extra) in enumerate(cases)])
    finally:
        for sock in [server, *fillers]:
            sock.close()


def free_port_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_huge_body_is_capped(tmp_path: Path, target: str) -> None:
    """100 MiB responses: the client keeps at most its body cap, so memory stays bounded."""
    out = tmp_path / "r.json"
    full_env = dict(os.environ, PYTHONPATH=str(REPO), CORPUS_PATH="/bytes/104857600", CORPUS_TIMEOUT="10")
    proc = subprocess.Popen([sys.executable, "-m", "loadgen", "run", "-f", WEB, "-H", target, "-u", "2", "-t",
                             "2s", "-q", "--json", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=full_env, cwd=REPO, text=True)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if proc.poll() is None and proc.returncode is None:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert os.waitstatus_to_exitcode(status) in (0, 1), stderr
    assert "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert _row(report)["requests"] >= 1
    assert report["totals"]["bytes_received"] >= 100 * 1024 * 1024
    assert usage.ru_maxrss < 450 * 1024, f"peak RSS {usage.ru_maxrss / 1024:.0f} MB for two 100 MiB bodies"


def test_chunked_and_stalled_responses(tmp_path: Path, target: str) -> None:
    """Long chunked bodies complete; a response that never comes is a read timeout failure."""
    out = tmp_path / "r.json"
    proc = run_loadgen("-f", WEB, "-H", target, "-u", "2", "-t", "2s", "-q", "--json", str(out),
                       env={"CORPUS_PATH": "/chunked/100000", "CORPUS_TIMEOUT": "5"})
    row = _row(_report(proc, out))
    assert row["requests"] >= 2 and row["failures"] == 0

    started = time.monotonic()
    proc = run_loadgen("-f", WEB, "-H", target, "-u", "2", "-t", "2s", "-q", "--json", str(out),
                       "--stop-timeout", "2", env={"CORPUS_PATH": "/stall", "CORPUS_TIMEOUT": "0.5"})
    assert time.monotonic() - started < 12
    report = _report(proc, out)
    assert _row(report)["failures"] >= 2
    assert "ReadTimeout" in _errors(report)


class RawServer:
    """A tiny TCP server answering each request with whatever its path asks for (bounded in time)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode()
            self.MODES.get(path, RawServer._garbage)(self, conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _garbage(self, conn: socket.socket) -> None:
        conn.sendall(b"\x00\xff\xfe this is not HTTP at all \x1b[31m\r\n\r\n")

    def _bad_status(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 abc Fine\r\nContent-Length: 2\r\n\r\nok")

    def _bad_length(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: -7\r\n\r\nbody")

    def _short_body(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this")

    def _close(self, conn: socket.socket) -> None:
        pass

    def _endless_headers(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        deadline = time.monotonic() + 10
        while not self.stopping.is_set() and time.monotonic() < deadline:
            conn.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")

    def _endless_chunks(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        deadline = time.monotonic() + 20
        while not self.stopping.is_set() and time.monotonic() < deadline:
            conn.sendall(b"5\r\nhello\r\n")
            time.sleep(0.05)

    MODES: dict[str, Callable[[RawServer, socket.socket], None]] = {
        "/garbage": _garbage, "/bad-status": _bad_status, "/bad-length": _bad_length,
        "/short-body": _short_body, "/close": _close, "/endless-headers": _endless_headers,
        "/endless-chunks": _endless_chunks,
    }


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


MALFORMED = ["/garbage", "/bad-status", "/bad-length", "/short-body", "/close", "/endless-headers"]


def test_malformed_responses_are_failures(tmp_path: Path, raw_server: RawServer) -> None:
    out = tmp_path / "r.json"
    started = time.monotonic()
    proc = run_loadgen("-f", WEB, "-H", raw_server.url, "-u", "2", "-t", "1s", "-q", "--json", str(out),
                       "--stop-timeout", "1", env={"CORPUS_PATH": ",".join(MALFORMED), "CORPUS_TIMEOUT": "2"})
    assert time.monotonic() - started < 10
    report = _report(proc, out)
    for path in MALFORMED:
        row = _row(report, path)
        assert row["failures"] == row["requests"] >= 1, (path, _errors(report))


def test_endless_chunked_body_never_hangs_the_run(tmp_path: Path, raw_server: RawServer) -> None:
    """A body that trickles forever: each read succeeds, so only the stop timeout ends it; the watchdog says
    where the user waits."""
    out = tmp_path / "r.json"
    started = time.monotonic()
    proc = run_loadgen("-f", WEB, "-H", raw_server.url, "-u", "1", "-t", "2s", "-q", "--json", str(out),
                       "--stop-timeout", "1", "--stall-timeout", "1",
                       env={"CORPUS_PATH": "/endless-chunks", "CORPUS_TIMEOUT": "2"})
    assert time.monotonic() - started < 10
    report = _report(proc, out)
    stalls = [w["message"] for w in report["warnings"] if w["kind"] == "stall"]
    assert any("Web.get has not returned" in m and "web.py" in m for m in stalls), report["warnings"]
