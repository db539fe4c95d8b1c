"""Live outputs end to end: the ZeroMQ stream, the web API (SSE, controls), Prometheus; bad addresses.

Every test runs ``python -m loadgen run`` as a subprocess against the built-in target on 127.0.0.1.
Helpers here (``write_script``, ``loadgen_cmd``, ``SseReader``) are reused by test_html.py and test_api.py.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPException
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import msgpack
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families
from servers import REPO, _env, free_port, start_target, stop_process, target_stats, wait_accepting

SCRIPT = '''
from loadgen import HttpUser, constant, task


class Browser(HttpUser):
    wait_time = constant(0.01)

    @task
    def index(self):
        self.client.get("/")
'''


# ---- helpers ----------------------------------------------------------------------------------------------
def write_script(tmp_path: Path) -> Path:
    path = tmp_path / "live_script.py"
    path.write_text(SCRIPT)
    return path


def loadgen_cmd(script: Path, host: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", host, "-q", *args]


def popen(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**_env(), **(env or {})},
                            cwd=REPO)


def request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
            context: ssl.SSLContext | None = None) -> tuple[int, Any, Any]:
    """``(status, response headers, JSON or text body)``; HTTP errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers={**sent, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            payload, status, got = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as exc:
        payload, status, got = exc.read(), exc.code, exc.headers
    try:
        return status, got, json.loads(payload)
    except ValueError:
        return status, got, payload.decode(errors="replace")


def read_stderr_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float = 20.0) -> list[str]:
    """stderr lines up to and including the first that matches ``pattern`` (fails after ``timeout``).

    Reads the pipe unbuffered (os.read), so what comes after stays in the pipe for ``proc.stderr.read()``; a
    line is complete once loadgen has flushed it, so reading on up to its newline never waits long."""
    assert proc.stderr is not None
    fd, lines, partial = proc.stderr.fileno(), [], b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline and sel.select(max(0.0, deadline - time.monotonic())):
            byte = os.read(fd, 1)
            if not byte:
                break  # the process exited
            if byte != b"\n":
                partial += byte
                continue
            lines.append(partial.decode(errors="replace"))
            partial = b""
            if re.search(pattern, lines[-1]):
                return lines
    raise AssertionError(f"no stderr line matching {pattern!r} within {timeout} s: {lines + [partial.decode()]}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def http(method: str, url: str, body: Any = None, content_type: str | None = "application/json",
         raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": content_type} if content_type and data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            payload = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


class SseReader(threading.Thread):
    """Reads ``GET url`` as server-sent events in a thread: ``events`` = [(recv_time, event, data)]."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.timeout = timeout
        self.events: list[tuple[float, str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as resp:
                assert resp.headers["Content-Type"].startswith("text/event-stream")
                event, data = "message", []
                for raw in resp:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if not line:
                        if data:
                            self.events.append((time.time(), event, json.loads("\n".join(data))))
                            if event == "report":
                                return
                        event, data = "message", []
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif line.startswith("event:"):
                        event = line[6:].strip()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def check_every_second(received: list[tuple[float, dict]], what: str, skip_first: bool = False) -> list[int]:
    """Each snapshot is one second later than the previous one and arrived < 1 s after its second ended."""
    seconds = [round(s["elapsed"]) for _, s in received]
    for (t_recv, snap) in received[1 if skip_first else 0:]:
        assert abs(snap["elapsed"] - round(snap["elapsed"])) < 0.3, f"{what}: tick off the second: {snap['elapsed']}"
        staleness = t_recv - snap["ts"]
        assert -0.2 < staleness < 1.0, f"{what}: snapshot {snap['elapsed']} arrived {staleness:.3f} s late"
    start = 1 if skip_first else 0
    assert seconds[start:] == list(range(seconds[start], seconds[start] + len(seconds) - start)), \
        f"{what}: a second is missing or repeated: {seconds}"
    return seconds


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    proc, url = start_target()
    yield url
    stop_process(proc)


# ---- the whole live path in one run -----------------------------------------------------------------------
def test_stream_web_and_prometheus_live(tmp_path: Path, target: str) -> None:
    script = write_script(tmp_path)
    stream_port, web_port, prom_port = free_port(), free_port(), free_port()
    web = f"http://127.0.0.1:{web_port}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{stream_port}")  # before loadgen binds: no snapshot is missed
    proc = popen(loadgen_cmd(script, target, "-u", "2", "-r", "50", "-t", "7s", "--json", str(tmp_path / "r.json"),
                             "--stream", f"tcp://127.0.0.1:{stream_port}", "--web", f"127.0.0.1:{web_port}",
                             "--prometheus", f"127.0.0.1:{prom_port}"))
    try:
        wait_accepting("127.0.0.1", web_port, proc=proc)
        sse = SseReader(web + "/api/stream")
        sse.start()
        snapshots: list[tuple[float, dict]] = []
        report: dict | None = None
        posted_at: float | None = None
        target_conns = metrics = None
        checks: dict[str, Any] = {}
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and report is None:
            if not sub.poll(200):
                continue
            topic, payload = sub.recv_multipart()
            value = msgpack.unpackb(payload, raw=False)
            if topic == b"report":
                report = value
                break
            assert topic == b"snapshot"
            snapshots.append((time.time(), value))
            if posted_at is None and value["elapsed"] >= 2:
                checks["users_before"] = value["users"]
                checks["conns_before"] = target_stats(target)["open_connections"]
                checks["post"] = http("POST", web + "/api/users", {"users": 5, "spawn_rate": 100})
                checks["stats"] = http("GET", web + "/api/stats")
                checks["history"] = http("GET", web + "/api/history")
                checks["report_early"] = http("GET", web + "/api/report")
                checks["no_ctype"] = http("POST", web + "/api/users", raw=b'{"users": 1}', content_type="text/plain")
                checks["bad_json"] = http("POST", web + "/api/users", raw=b"{nope")
                checks["negative"] = http("POST", web + "/api/users", {"users": -1})
                checks["rate_closed"] = http("POST", web + "/api/rate", {"rate": 5})
                checks["cross_origin"] = _post_with_origin(web + "/api/users", "http://evil.example")
                checks["missing"] = http("GET", web + "/api/nope")
                checks["page"] = http("GET", web + "/")
                posted_at = value["elapsed"]
            elif posted_at is not None and value["users"] == 5 and target_conns is None:
                target_conns = target_stats(target)["open_connections"]
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=5).read().decode()
        sse.join(10)
        code = proc.wait(15)
    finally:
        sub.close()
        context.term()
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        stop_process(proc)
    assert code == 0, stderr
    assert report is not None and report["schema"] == "loadgen.report/1"
    assert report["totals"]["requests"] > 0 and report["stop_reason"] == "run time reached"

    # a snapshot for every second, each within 1 s of the end of its second
    seconds = check_every_second(snapshots, "zmq")
    assert seconds[0] == 1 and seconds[-1] >= 6
    for _, snap in snapshots:
        assert snap["state"] == "running" and snap["model"] == "closed"
        assert {"rps", "fps", "current", "cumulative", "endpoints", "new_errors", "workers", "warnings"} <= set(snap)
    last = snapshots[-1][1]
    assert last["endpoints"][0]["name"] == "/" and last["endpoints"][0]["rps"] > 0  # per-endpoint current req/s

    # the same over SSE (the first event is the latest snapshot at connect time), ending with the report
    assert sse.error is None, sse.error
    sse_snaps = [(t, d) for t, e, d in sse.events if e == "message"]
    sse_seconds = check_every_second(sse_snaps, "sse", skip_first=True)
    assert sse_seconds[-1] == seconds[-1]
    assert sse.events[-1][1] == "report" and sse.events[-1][2]["totals"]["requests"] == report["totals"]["requests"]

    # control through the API: users go from 2 to 5, in the snapshots and at the target
    assert checks["users_before"] == 2
    assert checks["post"] == (200, {"ok": True, "users": 5, "spawn_rate": 100.0})
    assert any(s["users"] == 5 for _, s in snapshots)
    assert target_conns is not None and target_conns - checks["conns_before"] == 3  # one keep-alive per user
    assert report["users"]["peak"] == 5
    status, stats = checks["stats"]
    assert status == 200 and stats["elapsed"] >= 2
    status, history = checks["history"]
    assert status == 200 and history["model"] == "closed" and len(history["points"]) >= 2
    assert checks["report_early"][0] == 409
    assert checks["no_ctype"][0] == 415
    assert checks["bad_json"][0] == 400
    assert checks["negative"][0] == 400 and "users" in checks["negative"][1]["error"]
    assert checks["rate_closed"][0] == 409
    assert checks["cross_origin"] == 403
    assert checks["missing"][0] == 404
    assert checks["page"][0] == 200 and "LoadgenCharts" in checks["page"][1]

    # Prometheus exposition, parsed
    assert metrics is not None
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    requests = [s for s in families["loadgen_requests"].samples if s.name == "loadgen_requests_total"]
    assert requests[0].labels == {"method": "GET", "name": "/"} and requests[0].value > 0
    hist = families["loadgen_request_duration_seconds"].samples
    buckets = [s for s in hist if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in hist if s.name.endswith("_count"))
    assert count == buckets[-1].value and count >= requests[0].value
    assert families["loadgen_users"].samples[0].value == 5
    workers = {s.labels["state"]: s.value for s in families["loadgen_workers"].samples}
    assert workers["running"] == 1
    assert families["loadgen_connections_opened"].samples[0].value >= 5
    for name in ("loadgen_failures", "loadgen_tls_handshakes", "loadgen_tls_resumed", "loadgen_dns_lookups"):
        assert name in families


def _post_with_origin(url: str, origin: str) -> int:
    request = urllib.request.Request(url, data=b'{"users": 1}', method="POST",
                                     headers={"Content-Type": "application/json", "Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_stop_through_web_api(tmp_path: Path, target: str) -> None:
    script = write_script(tmp_path)
    web_port = free_port()
    proc = popen(loadgen_cmd(script, target, "-u", "1", "-t", "60s", "--web", f"127.0.0.1:{web_port}"))
    try:
        wait_accepting("127.0.0.1", web_port, proc=proc)
        started = time.monotonic()
        assert http("POST", f"http://127.0.0.1:{web_port}/api/stop", {}) == (200, {"ok": True, "stopping": True})
        code = proc.wait(15)
        assert time.monotonic() - started < 10
    finally:
        stop_process(proc)
    assert code == 0


# ---- bad values: one line, exit 2, no traceback -----------------------------------------------------------
def test_bad_live_output_values(tmp_path: Path) -> None:
    script = write_script(tmp_path)
    cert, key = web_certificate()
    other_key = write_other_key(tmp_path / "other-key.pem")
    web = ("--web", "127.0.0.1:0")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    cases = {
        "web-nonsense": ("--web", "nonsense"),
        "web-busy": ("--web", f"127.0.0.1:{port}"),
        "stream-nonsense": ("--stream", "nonsense"),
        "stream-busy": ("--stream", f"tcp://127.0.0.1:{port}"),
        "prometheus-port": ("--prometheus", "127.0.0.1:99999"),
        "prometheus-busy": ("--prometheus", f"127.0.0.1:{port}"),
        "web-cert-alone": ("--web-cert", cert, *web),
        "web-key-alone": ("--web-key", key, *web),
        "web-cert-unreadable": ("--web-cert", str(tmp_path / "missing.pem"), "--web-key", key, *web),
        "web-key-mismatch": ("--web-cert", cert, "--web-key", other_key, *web),
        "web-token-space": ("--web-token", "two words", *web),
    }
    procs = {name: popen(loadgen_cmd(script, "http://127.0.0.1:9", "-t", "3s", *args)) for name, args in cases.items()}
    try:
        results = {name: (p.wait(30), p.stderr.read().decode() if p.stderr else "") for name, p in procs.items()}
    finally:
        for p in procs.values():
            stop_process(p)
        busy.close()
    for name, (code, stderr) in results.items():
        lines = stderr.strip().splitlines()
        assert code == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("loadgen: error: "), (name, stderr)
        assert "Traceback" not in stderr
        option = cases[name][0]
        assert option in lines[0], (name, lines[0])
    assert "HOST:PORT" in results["web-nonsense"][1]
    assert "cannot" in results["web-busy"][1] and "in use" in results["web-busy"][1].lower()
    assert "--web-cert needs --web-key" in results["web-cert-alone"][1]
    assert "--web-key needs --web-cert" in results["web-key-alone"][1]
    assert "missing.pem: cannot read it" in results["web-cert-unreadable"][1]
    assert "not a PEM certificate and its private key" in results["web-key-mismatch"][1]
    assert "printable ASCII" in results["web-token-space"][1]


def web_certificate() -> tuple[str, str]:
    """The self-signed certificate (127.0.0.1, localhost) loadgen's own target uses for --tls."""
    from loadgen.target.tls import self_signed_cert

    return self_signed_cert()


def write_other_key(path: Path) -> str:
    """A private key that belongs to no certificate (for a mismatched --web-key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


# ---- securing the dashboard: token, private reads, TLS ----------------------------------------------------
def wait_for_elapsed(url: str, seconds: float, timeout: float = 15.0, context: ssl.SSLContext | None = None,
                     headers: dict[str, str] | None = None) -> dict:
    """Poll ``GET url/api/stats`` until the test has run ``seconds`` (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    stats: Any = None
    while time.monotonic() < deadline:
        status, _, stats = request("GET", url + "/api/stats", headers=headers, context=context)
        assert status == 200, stats
        if stats.get("elapsed", 0) >= seconds:
            return stats
        time.sleep(0.2)
    raise AssertionError(f"the test did not reach {seconds} s within {timeout} s: {stats}")


def test_web_token_generated_on_non_loopback_bind(tmp_path: Path, target: str) -> None:
    script = write_script(tmp_path)
    port, report_path = free_port(), tmp_path / "r.json"
    web = f"http://127.0.0.1:{port}"
    proc = popen(loadgen_cmd(script, target, "-u", "1", "-t", "60s", "--web", f"0.0.0.0:{port}",
                             "--json", str(report_path)))
    try:
        lines = read_stderr_until(proc, "dashboard at")
        found = re.fullmatch(rf"loadgen: dashboard at http://0\.0\.0\.0:{port}/#token=(\S+) \(the controls need "
                             r"this token; set --web-token or LOADGEN_WEB_TOKEN to choose it\)", lines[-1])
        assert found, lines
        token = unquote(found.group(1))
        assert len(token) >= 32
        wait_accepting("127.0.0.1", port, proc=proc)
        no_token = request("POST", web + "/api/stop", {})
        # a token one character off (a random token ends in "x" one time in 64: then the change is "y")
        wrong = request("POST", web + "/api/stop", {}, headers=bearer(token[:-1] + ("y" if token.endswith("x") else "x")))
        stats = wait_for_elapsed(web, 2)  # reads are open without --web-private; the test is still running
        page = request("GET", web + "/")
        right = request("POST", web + "/api/stop", {}, headers=bearer(token))
        code = proc.wait(15)
        rest = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        stop_process(proc)
    assert no_token[0] == 401 and no_token[1]["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer TOKEN" in no_token[2]["error"], no_token
    assert wrong[0] == 401 and wrong[2]["error"].startswith("wrong token"), wrong
    assert stats["state"] == "running" and stats["users"] == 1
    assert page[0] == 200 and '"fields"' in page[2]  # the page, with its data inlined
    assert right[0] == 200 and right[2] == {"ok": True, "stopping": True}, right
    assert code == 0, rest
    assert any("serves plain HTTP" in line for line in lines), lines
    report_text = report_path.read_text()
    assert json.loads(report_text)["stop_reason"] == "stopped from the web API"
    assert token not in report_text  # never written to a report (nor sent to workers)


def test_web_private_needs_the_token_for_reads(tmp_path: Path, target: str) -> None:
    script = write_script(tmp_path)
    port, token = free_port(), "chosen-token-1234"
    web = f"http://127.0.0.1:{port}"
    proc = popen(loadgen_cmd(script, target, "-u", "1", "-t", "60s", "--web", f"127.0.0.1:{port}", "--web-private"),
                 env={"LOADGEN_WEB_TOKEN": token})
    try:
        lines = read_stderr_until(proc, "dashboard at")
        wait_accepting("127.0.0.1", port, proc=proc)
        stats_open = request("GET", web + "/api/stats")
        stats_token = request("GET", web + "/api/stats", headers=bearer(token))
        page_open = request("GET", web + "/")
        cookie = stats_token[1]["Set-Cookie"].split(";")[0]
        page_cookie = request("GET", web + "/", headers={"Cookie": cookie})
        stream = _first_sse_line(web + "/api/stream", {"Cookie": cookie})
        stop_cookie = request("POST", web + "/api/stop", {}, headers={"Cookie": cookie})
        stop_none = request("POST", web + "/api/stop", {})
        alive = proc.poll() is None
        stop = request("POST", web + "/api/stop", {}, headers=bearer(token))
        code = proc.wait(15)
    finally:
        stop_process(proc)
    assert token not in "\n".join(lines)  # a chosen token is never printed
    assert "the dashboard and its controls need the --web-token" in lines[-1], lines
    assert stats_open[0] == 401 and "--web-private" in stats_open[2]["error"], stats_open
    assert stats_token[0] == 200 and "elapsed" in stats_token[2]
    attributes = stats_token[1]["Set-Cookie"]
    assert "HttpOnly" in attributes and "SameSite=Strict" in attributes and token not in attributes
    assert page_open[0] == 401 and "var initial = null;" in page_open[2] and '"fields"' not in page_open[2]
    assert page_cookie[0] == 200 and '"fields"' in page_cookie[2]
    assert stream == (200, "text/event-stream", "retry: 2000")
    assert stop_cookie[0] == 401 and stop_none[0] == 401 and alive  # the cookie is for reads only
    assert stop[0] == 200 and code == 0


def _first_sse_line(url: str, headers: dict[str, str]) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, resp.headers["Content-Type"].split(";")[0], resp.readline().decode().strip()


def test_web_over_tls(tmp_path: Path, target: str) -> None:
    script = write_script(tmp_path)
    cert, key = web_certificate()
    port = free_port()
    web = f"https://127.0.0.1:{port}"
    trusting = ssl.create_default_context(cafile=cert)
    proc = popen(loadgen_cmd(script, target, "-u", "1", "-t", "60s", "--web", f"127.0.0.1:{port}",
                             "--web-cert", cert, "--web-key", key))
    try:
        lines = read_stderr_until(proc, "dashboard and web API on")
        wait_accepting("127.0.0.1", port, proc=proc)
        stats = wait_for_elapsed(web, 1, context=trusting)
        with pytest.raises(urllib.error.URLError) as untrusted:
            urllib.request.urlopen(web + "/api/stats", timeout=5, context=ssl.create_default_context())
        with pytest.raises((HTTPException, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=5)  # plain HTTP gets no answer
        stop = request("POST", web + "/api/stop", {}, context=trusting)
        code = proc.wait(15)
        rest = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        stop_process(proc)
    assert lines[-1] == f"loadgen: dashboard and web API on https://127.0.0.1:{port}/", lines
    assert stats["state"] == "running"
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    assert stop[0] == 200 and code == 0, rest
    assert "Traceback" not in rest  # the failed plain-HTTP handshake is not a traceback


# ---- in-process units -------------------------------------------------------------------------------------
def test_parse_listen() -> None:
    from loadgen.model.errors import UsageError
    from loadgen.outputs.serving import parse_listen
    from loadgen.outputs.stream import stream_endpoint

    assert parse_listen("--web", "127.0.0.1:8089", 8089) == ("127.0.0.1", 8089)
    assert parse_listen("--web", "8089", 8089) == ("127.0.0.1", 8089)
    assert parse_listen("--web", "[::1]:80", 8089) == ("::1", 80)
    assert parse_listen("--web", "http://0.0.0.0:80/", 8089) == ("0.0.0.0", 80)
    for bad in ("nonsense", "host:", ":80", "1.2.3.4:70000", "a b:1", ""):
        with pytest.raises(UsageError):
            parse_listen("--web", bad, 8089)
    assert stream_endpoint("tcp://127.0.0.1:5558") == "tcp://127.0.0.1:5558"
    assert stream_endpoint("0.0.0.0:5558") == "tcp://*:5558"
    assert stream_endpoint("ipc:///tmp/x") == "ipc:///tmp/x"
    with pytest.raises(UsageError):
        stream_endpoint("udp://1.2.3.4:5")


def test_prometheus_collector_buckets() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from loadgen.control.controller import TestPlan
    from loadgen.outputs.prometheus import BUCKETS_S, AggregateCollector
    from loadgen.stats.aggregate import Aggregate
    from loadgen.stats.endpoint import Entry

    aggregate = Aggregate()
    values_us = [300, 800, 1_700, 4_000, 4_000, 40_000, 700_000, 3_000_000, 90_000_000]
    entry = Entry("GET", '/a"b\\c')
    for v in values_us:
        entry.latency.add(v)
    entry.requests, entry.failures = len(values_us), 2
    aggregate.entries[(entry.method, entry.name)] = entry
    aggregate.add_worker("w1", "h")
    aggregate.counters["opened"] = 7
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AggregateCollector(SimpleNamespace(aggregate=aggregate, plan=TestPlan())))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    samples = families["loadgen_request_duration_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert samples[0].labels["name"] == '/a"b\\c'
    for le in BUCKETS_S:
        label = next(k for k in buckets if k != "+Inf" and float(k) == le)
        assert buckets[label] == sum(1 for v in values_us if v <= le * 1e6), le
    assert buckets["+Inf"] == len(values_us)
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert total == pytest.approx(sum(values_us) / 1e6)
    assert families["loadgen_failures"].samples[0].value == 2
    assert families["loadgen_connections_opened"].samples[0].value == 7


def test_web_app_routes_and_report() -> None:
    """The WSGI app called directly (no socket traffic): controls, validation, report after the end."""
    import gevent.event

    from loadgen.control.controller import TestPlan
    from loadgen.outputs.web import WebOutput

    calls: list[tuple] = []
    controller = SimpleNamespace(plan=TestPlan(arrival_rate=10.0), stop_requested=gevent.event.Event(),
                                 set_rate=lambda r: calls.append(("rate", r)),
                                 set_users=lambda *a: calls.append(("users", *a)),
                                 request_stop=lambda reason: calls.append(("stop", reason)))
    web = WebOutput("127.0.0.1:0", controller)
    try:
        def call(method: str, path: str, body: bytes = b"", ctype: str = "application/json") -> tuple[str, Any]:
            import io

            environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": ctype,
                       "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "HTTP_HOST": "x"}
            status: list[str] = []
            out = b"".join(web.app(environ, lambda s, h: status.append(s)))
            return status[0], json.loads(out) if out.startswith((b"{", b"[")) else out

        assert call("GET", "/api/stats")[1]["state"] == "starting"
        assert call("POST", "/api/rate", b'{"rate": 25}')[0].startswith("200")
        assert call("POST", "/api/rate", b'{"rate": "fast"}')[0].startswith("400")
        assert call("POST", "/api/rate", b'{"rate": Infinity}')[0].startswith("400")
        assert call("POST", "/api/users", b'{"users": 3}')[0].startswith("409")  # open model
        assert call("DELETE", "/api/stop")[0].startswith("405")
        assert call("POST", "/api/stop", b"")[0].startswith("200")
        assert calls == [("rate", 25.0), ("stop", "stopped from the web API")]
        snap = {"elapsed": 1.0, "users": 1, "rps": 2.0, "fps": 0.0, "current": {"p50_ms": 1.0}, "endpoints": [],
                "new_errors": [{"method": "GET", "name": "/", "error": "<b>boom</b>", "count": 2}]}
        web.on_snapshot(snap)
        web.on_snapshot({**snap, "elapsed": 2.0})
        history = call("GET", "/api/history")[1]
        assert [p[0] for p in history["points"]] == [1.0, 2.0]
        assert history["errors"] == [{"method": "GET", "name": "/", "error": "<b>boom</b>", "count": 4}]
        assert call("GET", "/api/report")[0].startswith("409")
        web.on_report({"schema": "loadgen.report/1", "totals": {"requests": 3}})
        status, body = call("GET", "/api/report")
        assert status.startswith("200") and body["totals"]["requests"] == 3
        assert call("POST", "/api/rate", b'{"rate": 1}')[0].startswith("409")  # over
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/stream"}
        stream = b"".join(web.app(environ, lambda s, h: None)).decode()  # after the end: latest + report, then EOF
        assert '"elapsed":2.0' in stream and stream.rstrip().split("\n\n")[-1].startswith("event: report")
    finally:
        web.close()


def test_web_access_rules() -> None:
    """The token rules on the WSGI app directly: Bearer for POSTs, a read-only cookie, the token kept secret."""
    import io

    import gevent.event

    from loadgen.control.controller import TestPlan
    from loadgen.model.options import TestOptions
    from loadgen.outputs.web import WebOutput

    stops: list[str] = []
    controller = SimpleNamespace(plan=TestPlan(), stop_requested=gevent.event.Event(), request_stop=stops.append)
    web = WebOutput("127.0.0.1:0", controller, token="s3cret-token", private=True)
    try:
        def call(method: str, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
            environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": "application/json",
                       "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b""), "HTTP_HOST": "x",
                       **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}
            answer: list[Any] = []
            body = b"".join(web.app(environ, lambda s, h: answer.extend([s, dict(h)])))
            return answer[0], answer[1], body

        status, headers, _ = call("GET", "/api/history", authorization="bearer s3cret-token")
        assert status.startswith("200")
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "s3cret" not in headers["Set-Cookie"]
        assert "Set-Cookie" not in call("GET", "/api/stats", cookie=cookie)[1]  # already has it
        assert call("GET", "/api/stats", cookie=cookie)[0].startswith("200")
        assert call("GET", "/api/stats", cookie=cookie[:-1] + "0")[0].startswith("401")
        assert call("GET", "/api/stats", authorization="Basic s3cret-token")[0].startswith("401")
        assert call("POST", "/api/stop", cookie=cookie)[0].startswith("401")
        assert call("POST", "/api/stop", authorization="Bearer s3cret-tokeN")[0].startswith("401")
        assert stops == []
        assert call("POST", "/api/stop", authorization="Bearer s3cret-token")[0].startswith("200")
        assert stops == ["stopped from the web API"]
        assert web.announcement is not None and "s3cret" not in web.announcement
    finally:
        web.close()
    options = TestOptions(web="127.0.0.1:0", web_token="s3cret-token")
    assert "web_token" not in options.to_dict() and "s3cret" not in repr(options) + str(options.for_report())


def test_grafana_dashboard_uses_exported_metrics() -> None:
    import re

    from prometheus_client import CollectorRegistry, generate_latest

    from loadgen.control.controller import TestPlan
    from loadgen.outputs.prometheus import AggregateCollector
    from loadgen.stats.aggregate import Aggregate
    from loadgen.stats.endpoint import Entry

    aggregate = Aggregate()
    entry = Entry("GET", "/")
    entry.latency.add(1000)
    aggregate.entries[("GET", "/")] = entry
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AggregateCollector(SimpleNamespace(aggregate=aggregate, plan=TestPlan())))
    exported = {s.name for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    dashboard = json.loads((REPO / "deploy" / "grafana" / "loadgen.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bloadgen_\w+", expr)}
    assert used and used <= exported, used - exported
