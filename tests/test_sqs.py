"""examples/sqs_user.py against moto's server mode on 127.0.0.1, killed (SIGKILL) in the middle of the test:
the calls after the kill are recorded failures, the run ends on time, the report has the SQS rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from servers import REPO, free_port, stop_process, wait_accepting

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

EXAMPLE = REPO / "examples" / "sqs_user.py"
RUN_TIME, STOP_TIMEOUT = 6, 2


def test_sqs_user_survives_the_server_being_killed(tmp_path: Path) -> None:
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_accepting("127.0.0.1", port, timeout=30, proc=moto)
        out = tmp_path / "sqs.json"
        env = dict(os.environ, PYTHONPATH=str(REPO), SQS_ENDPOINT=f"http://127.0.0.1:{port}",
                   SQS_QUEUE=f"loadgen-test-{port}", AWS_REGION="us-east-1")
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(key, None)
        killer = threading.Timer(RUN_TIME / 2, moto.kill)  # SIGKILL mid-test
        started = time.monotonic()
        killer.start()
        proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(EXAMPLE), "-u", "5", "-r", "20",
                               "-t", f"{RUN_TIME}s", "--stop-timeout", str(STOP_TIMEOUT), "-q", "--json", str(out)],
                              capture_output=True, text=True, timeout=60, env=env, cwd=REPO,
                              stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        killer.join()
    finally:
        stop_process(moto)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr  # requests failed after the kill
    assert elapsed < RUN_TIME + STOP_TIMEOUT + 6, f"took {elapsed:.1f} s"
    report = json.loads(out.read_text())
    rows = {(e["method"], e["name"]): e for e in report["endpoints"]}
    for name in ("create_queue", "send", "receive"):
        assert ("sqs", name) in rows, rows.keys()
    send, receive = rows[("sqs", "send")], rows[("sqs", "receive")]
    assert send["requests"] > send["failures"] > 0  # some before the kill succeeded, the later ones failed
    assert receive["requests"] > receive["failures"] > 0
    errors = " | ".join(e["error"] for e in report["errors"] if e["method"] == "sqs")
    assert "EndpointConnectionError" in errors or "ConnectionRefused" in errors, errors
    assert not [w for w in report["warnings"] if w["kind"] in ("stall", "patching")], report["warnings"]


def test_one_call_of_the_example_makes_one_attempt(tmp_path: Path) -> None:
    """The example's botocore config against a server that fails every request (HTTP 500, which botocore
    retries): the server sees exactly one request per call. ``{"max_attempts": 1}`` would show two."""
    import http.server

    import boto3
    from botocore.exceptions import ClientError

    seen: list[str] = []

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.path)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sys.path.insert(0, str(EXAMPLE.parent))
        import sqs_user

        client = boto3.session.Session().client(
            "sqs", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            aws_access_key_id="testing", aws_secret_access_key="testing", config=sqs_user.CONFIG)
        for calls in (1, 2, 3):
            with pytest.raises(ClientError):
                client.list_queues()
            assert len(seen) == calls, f"{len(seen)} attempts for {calls} calls"
    finally:
        sys.path.remove(str(EXAMPLE.parent))
        server.shutdown()
        server.server_close()
