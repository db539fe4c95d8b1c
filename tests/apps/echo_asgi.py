"""A plain ASGI echo app (no framework): ``uvicorn echo_asgi:app``, ``hypercorn echo_asgi:app``.

Each request is logged and answered as ``echo_common`` describes. What it records comes straight from the
ASGI scope: ``path`` is ``raw_path`` (the target's path bytes as received; servers fill it since ASGI 2.1,
else ``path`` is re-quoted) plus ``?`` + ``query_string`` when the query is not empty (an empty query after
``?`` is not kept apart by the servers), and ``headers`` are the scope's header pairs (servers lowercase the
names and keep the order and repeats). Supports the ``lifespan`` protocol; refuses websockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from echo_common import log_record, make_record, plan

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _target(scope: Scope) -> str:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~%")
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    if body is None:
        return
    client = scope.get("client")
    record = make_record(
        method=scope["method"],
        path=_target(scope),
        http_version=scope.get("http_version", "1.1"),
        headers=[[name.decode("latin-1").lower(), value.decode("latin-1")] for name, value in scope["headers"]],
        body=body,
        client=list(client) if client else None,
        sources={"path": "raw_path+query_string", "headers": "asgi-scope"},
    )
    log_record(record)
    reply = plan(record)
    if reply.sleep:
        await asyncio.sleep(reply.sleep)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.header_list()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    method = scope["method"]
    if reply.chunks is None:
        await send({"type": "http.response.body", "body": reply.body_for(method), "more_body": False})
        return
    for i, chunk in enumerate(reply.chunks):
        if i and reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        if method != "HEAD":
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
