"""A plain WSGI echo app: ``gunicorn -c tests/apps/echo_gunicorn_conf.py echo_wsgi:app``.

Each request is logged and answered as ``echo_common`` describes, like ``echo_asgi``. A WSGI environ loses
what the differential tests want to see (header order and repeats, the exact target), so the app takes it
from the best source it has and says which in the record's ``sources``:

- ``path``: ``RAW_URI`` (gunicorn) or ``REQUEST_URI`` (uWSGI, mod_wsgi) as received, else rebuilt from
  ``SCRIPT_NAME`` + ``PATH_INFO`` (re-quoted) + ``?QUERY_STRING``.
- ``headers``: under gunicorn with ``echo_gunicorn_conf.py``, its ``pre_request`` hook hands over the parsed
  request's header list (``remember_request``): every header in the order received, repeats apart, names
  lowercased (what gunicorn kept: it drops names with ``_`` by default). Without the hook, they are rebuilt
  from the environ (``HTTP_*`` in environ order, ``CONTENT_TYPE``/``CONTENT_LENGTH`` last, repeats joined
  with ``,`` by the server).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from echo_common import log_record, make_record, plan, status_line

StartResponse = Callable[..., Any]

# set by echo_gunicorn_conf.pre_request just before the app is called for the same request, in the same
# thread (sync worker) or greenlet (gevent worker: gunicorn patches threading before it loads the app)
_current = threading.local()


def remember_request(uri: str, headers: list[tuple[str, str]]) -> None:
    """Called by the server hook with the request's raw target and header list (in order)."""
    _current.request = (uri, [[name.lower(), value] for name, value in headers])


def _take_remembered() -> tuple[str, list[list[str]]] | None:
    request = getattr(_current, "request", None)
    _current.request = None
    return request


def _target(environ: dict[str, Any]) -> tuple[str, str]:
    for key in ("RAW_URI", "REQUEST_URI"):
        if environ.get(key):
            return environ[key], key
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    path = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~%") or "/"
    query = environ.get("QUERY_STRING", "")
    return (f"{path}?{query}" if query else path), "reconstructed"


def _environ_headers(environ: dict[str, Any]) -> list[list[str]]:
    headers = [[key[5:].replace("_", "-").lower(), value] for key, value in environ.items()
               if key.startswith("HTTP_")]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append([key.replace("_", "-").lower(), environ[key]])
    return headers


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked or environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


def _chunks(chunks: list[bytes], delay: float) -> Iterator[bytes]:
    for i, chunk in enumerate(chunks):
        if i and delay:
            time.sleep(delay)
        yield chunk


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    remembered = _take_remembered()
    target, target_source = _target(environ)
    if remembered is not None:
        headers, headers_source = remembered[1], "gunicorn-request"
    else:
        headers, headers_source = _environ_headers(environ), "environ"
    body = _read_body(environ)
    port = environ.get("REMOTE_PORT")
    record = make_record(
        method=environ["REQUEST_METHOD"],
        path=target,
        http_version=environ.get("SERVER_PROTOCOL", "HTTP/1.1").removeprefix("HTTP/"),
        headers=headers,
        body=body,
        client=[environ.get("REMOTE_ADDR"), int(port) if port and port.isdigit() else port],
        sources={"path": target_source, "headers": headers_source},
    )
    log_record(record)
    reply = plan(record)
    if reply.sleep:
        time.sleep(reply.sleep)
    start_response(status_line(reply.status), reply.header_list())
    method = environ["REQUEST_METHOD"]
    if reply.chunks is None:
        return [reply.body_for(method)]
    if method == "HEAD":
        return [b""]
    return _chunks(reply.chunks, reply.chunk_delay)
