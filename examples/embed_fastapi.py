"""Embed loadgen in a FastAPI service: start tests over HTTP and relay their live stream as server-sent events.

    pip install 'loadgen[examples]'          # fastapi + uvicorn
    LOADGEN_EXAMPLE_SCRIPT=examples/basic.py uvicorn --app-dir examples embed_fastapi:app --port 8000

    curl -X POST localhost:8000/tests -H 'Content-Type: application/json' \
         -d '{"host": "http://127.0.0.1:8080", "users": 10, "spawn_rate": 5, "run_time": "1m"}'
    # an HTTPS target with a self-signed certificate: add "insecure": true, or "ca_bundle": "/path/ca.pem"
    curl -N localhost:8000/tests/1/stream                # data: {snapshot}\\n\\n each second, then event: report
    curl -X POST localhost:8000/tests/1/users -H 'Content-Type: application/json' -d '{"users": 20}'
    curl -X POST localhost:8000/tests/1/stop
    curl localhost:8000/tests/1/report

Only ``loadgen.api`` is imported: the service never loads gevent; each test is a ``loadgen run`` subprocess.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

import loadgen.api

DEFAULT_SCRIPT = os.environ.get("LOADGEN_EXAMPLE_SCRIPT", os.path.join(os.path.dirname(__file__), "basic.py"))

_tests: dict[int, loadgen.api.Handle] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    for handle in list(_tests.values()):  # stop every test still running when the service stops
        handle.close()


app = FastAPI(title="loadgen embedded", lifespan=lifespan)


class TestRequest(BaseModel):
    host: str
    users: int = Field(1, ge=0)
    spawn_rate: float = Field(1.0, gt=0)
    run_time: str | None = "1m"
    script: str | None = None
    insecure: bool = False  # do not verify the target's TLS certificate (a self-signed test target)
    ca_bundle: str | None = None  # or verify it against these CA certificates (a PEM file on this host)


class UsersRequest(BaseModel):
    users: int = Field(..., ge=0)
    spawn_rate: float | None = Field(None, gt=0)


def _handle(test_id: int) -> loadgen.api.Handle:
    handle = _tests.get(test_id)
    if handle is None:
        raise HTTPException(404, f"no test {test_id}")
    return handle


@app.post("/tests")
def start_test(request: TestRequest) -> dict[str, Any]:
    try:
        tls: dict[str, Any] = {"insecure": True} if request.insecure else {}
        if request.ca_bundle:
            tls["ca_bundle"] = request.ca_bundle
        handle = loadgen.api.start(script=request.script or DEFAULT_SCRIPT, host=request.host, users=request.users,
                                   spawn_rate=request.spawn_rate, run_time=request.run_time, **tls)
    except loadgen.api.LoadgenError as exc:
        raise HTTPException(400, str(exc)) from None
    with _lock:
        test_id = next(_ids)
        _tests[test_id] = handle
    return {"id": test_id, "stream": f"/tests/{test_id}/stream", "dashboard": handle.web_url + "/"}


@app.get("/tests/{test_id}/stream")
def stream(test_id: int) -> StreamingResponse:
    """Relay the test's snapshots as SSE. One relay per test (the ZeroMQ subscription is the handle's)."""
    handle = _handle(test_id)

    def events() -> Iterator[str]:  # a sync generator: Starlette iterates it in a worker thread
        for snapshot in handle.stream():
            yield f"data: {json.dumps(snapshot)}\n\n"
        try:
            yield f"event: report\ndata: {json.dumps(handle.report(timeout=30))}\n\n"
        except (loadgen.api.LoadgenError, subprocess.TimeoutExpired):
            yield "event: end\ndata: {}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@app.get("/tests/{test_id}")
def status(test_id: int) -> dict[str, Any]:
    handle = _handle(test_id)
    code = handle.returncode
    if code is not None:
        return {"id": test_id, "running": False, "exit_code": code}
    try:
        return {"id": test_id, "running": True, "stats": handle.stats()}
    except loadgen.api.LoadgenError:
        return {"id": test_id, "running": handle.returncode is None}


@app.post("/tests/{test_id}/users")
def set_users(test_id: int, request: UsersRequest) -> dict[str, Any]:
    try:
        return _handle(test_id).set_users(request.users, request.spawn_rate)
    except loadgen.api.LoadgenError as exc:
        raise HTTPException(409, str(exc)) from None


@app.post("/tests/{test_id}/stop")
def stop(test_id: int) -> dict[str, Any]:
    _handle(test_id).stop()
    return {"id": test_id, "stopping": True}


@app.get("/tests/{test_id}/report")
def report(test_id: int) -> dict[str, Any]:
    handle = _handle(test_id)
    try:
        return handle.report(timeout=2)  # immediate once the stream relayed it or the process exited
    except subprocess.TimeoutExpired:
        raise HTTPException(409, "the test is still running") from None
    except loadgen.api.LoadgenError as exc:
        raise HTTPException(500, str(exc)) from None

