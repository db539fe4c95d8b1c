"""The embedding API (loadgen.api) and the FastAPI example, with real processes on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import REPO, _env, free_port, start_target, stop_process, wait_accepting
from test_live import SseReader, http, write_script

import loadgen.api

# Runs in a fresh interpreter: the caller must never load gevent (nor zmq.green) by using loadgen.api.
EMBED = r'''
import json, sys, time
import loadgen.api
after_import = sorted(m for m in sys.modules if m.split(".")[0] in ("gevent", "zmq", "greenlet"))
handle = loadgen.api.start(script=sys.argv[1], host=sys.argv[2], users=2, spawn_rate=50, run_time=60)
seen, users, received = [], None, []
t0 = time.monotonic()
for snap in handle.stream(timeout=10):
    seen.append(snap["elapsed"]); received.append(time.time() - snap["ts"])
    if users is None and snap["elapsed"] >= 1.5:
        users = handle.set_users(4, spawn_rate=100)
    if snap["users"] == 4 and snap["elapsed"] >= 3:
        handle.stop()
code = handle.wait(20)
report = handle.report()
print(json.dumps({"after_import": after_import, "seen": seen, "staleness": max(received), "set": users,
                  "code": code, "requests": report["totals"]["requests"], "peak": report["users"]["peak"],
                  "reason": report["stop_reason"], "wall": time.monotonic() - t0,
                  "green": [m for m in sys.modules if m.startswith(("gevent", "zmq.green"))]}))
handle.close()
'''


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    proc, url = start_target()
    yield url
    stop_process(proc)


def test_embedding_streams_controls_and_stops(tmp_path: Path, target: str) -> None:
    script = write_script(tmp_path)
    out = subprocess.run([sys.executable, "-c", EMBED, str(script), target], capture_output=True, text=True,
                         timeout=60, env=_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in result["after_import"] if m.startswith("gevent") or m == "zmq.green"]
    assert result["green"] == []  # not after starting, streaming and controlling a test either
    seen = [round(t) for t in result["seen"]]
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 3
    assert result["staleness"] < 1.0
    assert result["set"] == {"ok": True, "users": 4, "spawn_rate": 100.0}
    assert result["code"] == 0 and result["requests"] > 0 and result["peak"] == 4
    assert result["reason"] == "stopped from the web API"
    assert result["wall"] < 20  # stopped long before the 60 s run time


def test_start_reports_loadgen_error(tmp_path: Path) -> None:
    with pytest.raises(loadgen.api.LoadgenError, match=r"exited with 2 .*spawn-rate"):
        loadgen.api.start(script=write_script(tmp_path), host="http://127.0.0.1:9", users=1, spawn_rate=0)


def test_build_args() -> None:
    args = loadgen.api.build_args("s.py", "http://h:1", 3, 2.5, 30, {
        "arrival_rate": 5, "thresholds": ["p99<300ms", "error_rate<0.01"], "insecure": True, "quiet": False,
        "tls_resume": False, "stop_timeout": 2, "html_path": "r.html", "user_classes": ["A", "B"], "pool": None})
    assert args == ["-f", "s.py", "-H", "http://h:1", "-u", "3", "-r", "2.5", "-t", "30s", "--arrival-rate", "5",
                    "--threshold", "p99<300ms", "--threshold", "error_rate<0.01", "--insecure", "--no-tls-resume",
                    "--stop-timeout", "2s", "--html", "r.html", "A", "B"]
    with pytest.raises(TypeError):
        loadgen.api.build_args(None, None, None, None, None, {"web": "x"})


def start_fastapi_example(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """examples/embed_fastapi.py under uvicorn on loopback (fastapi and uvicorn are in the test extra), once it
    accepts; returns the process and its base URL."""
    port = free_port()
    env = _env()
    env["LOADGEN_EXAMPLE_SCRIPT"] = str(write_script(tmp_path))
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "examples"), "embed_fastapi:app",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    try:
        wait_accepting("127.0.0.1", port, timeout=20, proc=server)
    except BaseException:
        stop_process(server, timeout=10)
        raise
    return server, f"http://127.0.0.1:{port}"


def test_fastapi_example_relays_a_live_test(tmp_path: Path, target: str) -> None:
    server, base = start_fastapi_example(tmp_path)
    try:
        status, started = http("POST", base + "/tests", {"host": target, "users": 2, "spawn_rate": 50,
                                                        "run_time": "30s"})
        assert status == 200, started
        sse = SseReader(base + started["stream"])
        sse.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(sse.events) < 2:
            time.sleep(0.1)
        assert len(sse.events) >= 2, (sse.error, sse.events)
        status, body = http("GET", f"{base}/tests/{started['id']}")
        assert status == 200 and body["running"] is True and body["stats"]["users"] == 2
        assert http("POST", f"{base}/tests/{started['id']}/users", {"users": 3})[0] == 200
        while time.monotonic() < deadline and not any(d.get("users") == 3 for _, e, d in sse.events):
            time.sleep(0.1)
        assert http("POST", f"{base}/tests/{started['id']}/stop", {})[0] == 200
        sse.join(20)
        assert sse.error is None, sse.error
        kinds = [e for _, e, _ in sse.events]
        assert kinds[-1] == "report" and kinds.count("message") >= 2
        assert any(d.get("users") == 3 for _, e, d in sse.events if e == "message")
        with urllib.request.urlopen(f"{base}/tests/{started['id']}/report", timeout=10) as resp:
            report = json.loads(resp.read())
        assert report["totals"]["requests"] > 0 and report["stop_reason"] == "stopped from the web API"
    finally:
        stop_process(server, timeout=10)


@pytest.mark.parametrize("insecure", [False, True])
def test_fastapi_example_tests_an_https_target_with_a_self_signed_certificate(tmp_path: Path, tls_target: str,
                                                                              insecure: bool) -> None:
    """Without ``insecure`` every request fails certificate verification (as it must); with it they pass."""
    server, base = start_fastapi_example(tmp_path)
    try:
        status, started = http("POST", base + "/tests", {"host": tls_target, "users": 2, "spawn_rate": 50,
                                                        "run_time": "2s", "insecure": insecure})
        assert status == 200, started
        deadline, report = time.monotonic() + 30, None
        while time.monotonic() < deadline and report is None:
            status, body = http("GET", f"{base}/tests/{started['id']}/report")
            report = body if status == 200 else None
            time.sleep(0.2)
        assert report is not None, "no report within 30 s"
        totals = report["totals"]
        assert totals["requests"] > 0
        if insecure:
            assert totals["failures"] == 0, report["errors"]
        else:
            assert totals["failures"] == totals["requests"]
            assert any("CERTIFICATE_VERIFY_FAILED" in e["error"] or "certificate" in e["error"].lower()
                       for e in report["errors"]), report["errors"]
    finally:
        stop_process(server, timeout=10)


# set_users() during a stage plan: the ramp gives way, the test runs on to its run time (it used to end there)
STAGED = r'''
import json, sys, time
import loadgen.api
handle = loadgen.api.start(script=sys.argv[1], host=sys.argv[2], users=1, spawn_rate=50, run_time=7,
                           stages="2s:2,1s:2")
changed = None
for snap in handle.stream(timeout=20):
    if changed is None and snap["elapsed"] >= 1:
        changed = handle.set_users(3, spawn_rate=100)
code = handle.wait(30)
report = handle.report()
print(json.dumps({"code": code, "reason": report["stop_reason"], "duration": report["duration_s"],
                  "requests": report["totals"]["requests"], "peak": report["users"]["peak"],
                  "after_ramp": [p["users"] for p in report["timeline"] if 4 <= p["t"] <= 6.5]}))
handle.close()
'''


def test_set_users_during_stages_keeps_the_test_running(tmp_path: Path, target: str) -> None:
    from servers import reset_target, target_stats

    reset_target(target)
    script = write_script(tmp_path)
    out = subprocess.run([sys.executable, "-c", STAGED, str(script), target], capture_output=True, text=True,
                         timeout=90, env=_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reason"] == "run time reached", result
    assert result["duration"] >= 6.5 and result["peak"] == 3, result
    assert result["after_ramp"] and set(result["after_ramp"]) == {3}, result  # held after the stages ended
    assert target_stats(target)["requests"] == result["requests"]  # what the target served, exactly
