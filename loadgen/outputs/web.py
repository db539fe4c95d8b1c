"""``--web HOST:PORT``: the live dashboard and a small JSON API, served by gevent.pywsgi.

GET  /              the dashboard (one self-contained page)
GET  /api/stats     the latest snapshot
GET  /api/history   recent points for the charts, cumulative errors, the latest snapshot
GET  /api/stream    server-sent events: one snapshot a second, then ``event: report``
GET  /api/report    the final report (409 while the test runs)
POST /api/users     {"users": N, "spawn_rate": R}  closed model
POST /api/rate      {"rate": R}                    open model
POST /api/stop      stop the test

POSTs must carry ``Content-Type: application/json`` (so a web page elsewhere cannot trigger them without a
CORS preflight, which this server never grants) and, if the browser sends an Origin, it must be this host.
With a token (``--web-token``, or generated on a non-loopback bind) POSTs need ``Authorization: Bearer TOKEN``
too, and with ``--web-private`` so do the reads (see loadgen/outputs/access.py). ``--web-cert`` and
``--web-key`` serve it all over HTTPS.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from gevent.event import Event

from loadgen.model.addresses import is_loopback
from loadgen.outputs.access import Access, announcement, generate_token
from loadgen.outputs.serving import parse_listen, read_asset, server_url, start_server, tls_context, to_json

log = logging.getLogger("loadgen.outputs.web")
HISTORY_POINTS = 3600
CLIENT_BACKLOG = 120
KEEPALIVE_S = 15.0
MAX_BODY = 64 * 1024
MAX_ERRORS = 500
MAX_USERS = 10_000_000
PAGE_PATHS = ("/", "/index.html")


def dashboard_html() -> str:
    """The dashboard page with charts.js inlined (no external assets)."""
    page = read_asset("dashboard.html")
    charts = read_asset("charts.js").replace("</script", "<\\/script")
    return page.replace("/*@charts.js@*/", charts, 1)


def history_point(snapshot: dict) -> list:
    current = snapshot.get("current", {})
    return [snapshot.get("elapsed"), snapshot.get("users"), snapshot.get("rps"), snapshot.get("fps"),
            current.get("p50_ms"), current.get("p95_ms"), current.get("p99_ms")]


class _Client:
    """One server-sent-events subscriber: a bounded backlog (oldest frames dropped) and a wake-up event."""

    __slots__ = ("frames", "wake", "done")

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque(maxlen=CLIENT_BACKLOG)
        self.wake = Event()
        self.done = False

    def push(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.wake.set()

    def finish(self) -> None:
        self.done = True
        self.wake.set()


class ApiError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class WebOutput:
    describe = "dashboard and web API"

    def __init__(self, address: str, controller: Any, *, token: str | None = None, private: bool = False,
                 certfile: str | None = None, keyfile: str | None = None) -> None:
        self.controller = controller
        self.latest: dict | None = None
        self.latest_json = to_json({"state": "starting", "elapsed": 0.0, "users": 0})
        self.history: deque[list] = deque(maxlen=HISTORY_POINTS)
        self.errors: dict[tuple[str, str, str], dict] = {}
        self.report_json: bytes | None = None
        self.clients: set[_Client] = set()
        self._page: str | None = None
        host, port = parse_listen("--web", address, 8089)
        context = tls_context("--web", certfile, keyfile)
        generated = token is None and (private or not is_loopback(host))
        if generated:
            token = generate_token()
        self.access = Access(token, private, secure=context is not None)
        self.server = start_server("--web", address, host, port, self.app, ssl_context=context)
        self.url = server_url(self.server) + "/"
        self.announcement = announcement(self.url, token, generated, private)
        if not is_loopback(host) and context is None:
            print(f"loadgen: warning: --web {address} serves plain HTTP: the token and the test's data cross the "
                  "network unencrypted; give --web-cert and --web-key to serve HTTPS", file=sys.stderr, flush=True)

    # ---- output interface --------------------------------------------------------------------------------
    def on_snapshot(self, snapshot: dict) -> None:
        self.latest = snapshot
        self.latest_json = to_json(snapshot)
        self.history.append(history_point(snapshot))
        for row in snapshot.get("new_errors", ()):
            key = (row.get("method", ""), row.get("name", ""), row.get("error", ""))
            known = self.errors.get(key)
            if known is not None:
                known["count"] += row.get("count", 0)
            elif len(self.errors) < MAX_ERRORS:
                self.errors[key] = dict(row)
        frame = b"data: " + self.latest_json + b"\n\n"
        for client in list(self.clients):
            client.push(frame)

    def on_report(self, report: dict) -> None:
        self.report_json = to_json(report)
        frame = b"event: report\ndata: " + self.report_json + b"\n\n"
        if self.latest is not None:
            self.latest["state"] = "finished"
            self.latest_json = to_json(self.latest)
        for client in list(self.clients):
            client.push(frame)
            client.finish()

    def close(self) -> None:
        import gevent

        for client in list(self.clients):
            client.finish()
        for _ in range(20):  # let subscribers receive what is queued (at most 1 s)
            if not any(c.frames for c in self.clients):
                break
            gevent.sleep(0.05)
        self.server.stop(timeout=1.0)

    # ---- WSGI --------------------------------------------------------------------------------------------
    def app(self, environ: dict, start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        extra: list[tuple[str, str]] = []
        try:
            refusal = self.access.refusal(method, environ)
            if refusal is not None:
                status, body, ctype = self._refused(method, path, refusal)
            else:
                cookie = self.access.set_cookie(method, environ)
                extra = [cookie] if cookie is not None else []
                if path == "/api/stream" and method == "GET":
                    start_response("200 OK", [("Content-Type", "text/event-stream; charset=utf-8"),
                                              ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"), *extra])
                    return self._events()
                status, body, ctype = self._route(method, path, environ)
        except ApiError as exc:
            status, body, ctype = exc.status, to_json({"error": str(exc)}), "application/json"
        except Exception as exc:  # noqa: BLE001 - answer 500, log the details
            log.debug("web API error on %s %s", method, path, exc_info=True)
            status, body, ctype = "500 Internal Server Error", to_json({"error": str(exc)}), "application/json"
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                   ("X-Content-Type-Options", "nosniff"), *extra]
        if status.startswith("401"):
            headers.append(("WWW-Authenticate", 'Bearer realm="loadgen"'))
        if ctype.startswith("text/html"):
            headers.append(("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; "
                            "style-src 'unsafe-inline'; connect-src 'self'; img-src data:"))
        start_response(status, headers)
        return [body] if method != "HEAD" else []

    def _route(self, method: str, path: str, environ: dict) -> tuple[str, bytes, str]:
        ok, js = "200 OK", "application/json"
        if method in ("GET", "HEAD"):
            if path in PAGE_PATHS:
                return ok, self._page_html(self._history()), "text/html; charset=utf-8"
            if path == "/api/stats":
                return ok, self.latest_json, js
            if path == "/api/history":
                return ok, to_json(self._history()), js
            if path == "/api/report":
                if self.report_json is None:
                    raise ApiError("409 Conflict", "the test is still running: the report comes at the end")
                return ok, self.report_json, js
            if path.startswith("/api/"):
                raise ApiError("404 Not Found", f"no such endpoint: {path}")
            raise ApiError("404 Not Found", "not found: the dashboard is at /")
        if method == "POST" and path in ("/api/users", "/api/rate", "/api/stop"):
            data = self._json_body(environ)
            if self.report_json is not None or self.controller.stop_requested.is_set():
                raise ApiError("409 Conflict", "the test is over")
            return ok, to_json(self._control(path, data)), js
        if path.startswith("/api/") or path == "/":
            raise ApiError("405 Method Not Allowed", f"{method} is not allowed on {path}")
        raise ApiError("404 Not Found", "not found")

    def _refused(self, method: str, path: str, refusal: str) -> tuple[str, bytes, str]:
        """401. A private dashboard's page still loads, without any data: its script then asks for the data
        with the token from the URL fragment, which sets the read cookie the EventSource needs."""
        if method in ("GET", "HEAD") and path in PAGE_PATHS:
            return "401 Unauthorized", self._page_html(None), "text/html; charset=utf-8"
        raise ApiError("401 Unauthorized", refusal)

    def _page_html(self, history: dict | None) -> bytes:
        if self._page is None:
            self._page = dashboard_html()
        # JSON inside <script>: no "<" at all, so no "</script>" or "<!--" can end it early
        inline = to_json(history).decode("utf-8").replace("<", "\\u003c")
        return self._page.replace("/*@history@*/null", inline, 1).encode("utf-8")

    def _history(self) -> dict:
        plan = self.controller.plan
        return {
            "fields": ["t", "users", "rps", "fps", "p50_ms", "p95_ms", "p99_ms"],
            "points": list(self.history),
            "errors": sorted(self.errors.values(), key=lambda r: -r.get("count", 0)),
            "latest": self.latest,
            "model": "open" if plan.open_model else "closed",
            "run_time": plan.run_time,
            "finished": self.report_json is not None,
        }

    def _json_body(self, environ: dict) -> dict:
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError("415 Unsupported Media Type", "send Content-Type: application/json")
        origin = environ.get("HTTP_ORIGIN")
        if origin and origin != "null" and urlsplit(origin).netloc != environ.get("HTTP_HOST", ""):
            raise ApiError("403 Forbidden", f"cross-origin request from {origin} refused")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            raise ApiError("413 Content Too Large", f"body must be 0..{MAX_BODY} bytes")
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("400 Bad Request", "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError("400 Bad Request", "body must be a JSON object")
        return data

    def _control(self, path: str, data: dict) -> dict:
        controller = self.controller
        if path == "/api/stop":
            controller.request_stop("stopped from the web API")
            return {"ok": True, "stopping": True}
        if path == "/api/users":
            if controller.plan.open_model:
                raise ApiError("409 Conflict", "this test runs the open model: POST /api/rate {\"rate\": R}")
            users = _number(data, "users", int, 0, MAX_USERS, required=True)
            spawn_rate = _number(data, "spawn_rate", float, 0, None, required=False)
            controller.set_users(users, spawn_rate)
            return {"ok": True, "users": users, "spawn_rate": spawn_rate or controller.plan.spawn_rate}
        if not controller.plan.open_model:
            raise ApiError("409 Conflict", "this test runs the closed model: POST /api/users {\"users\": N}")
        rate = _number(data, "rate", float, 0, None, required=True, allow_zero=True)
        controller.set_rate(rate)
        return {"ok": True, "rate": rate}

    def _events(self) -> Iterator[bytes]:
        head = b"retry: 2000\n\n"
        if self.latest is not None:
            head += b"data: " + self.latest_json + b"\n\n"
        if self.report_json is not None:
            yield head + b"event: report\ndata: " + self.report_json + b"\n\n"
            return
        client = _Client()
        self.clients.add(client)
        try:
            yield head
            while True:
                if client.frames:
                    chunk = b"".join(client.frames)
                    client.frames.clear()
                    yield chunk
                    continue
                if client.done:
                    return
                client.wake.clear()
                if not client.wake.wait(KEEPALIVE_S):
                    yield b": keep-alive\n\n"
        finally:
            self.clients.discard(client)


def _number(data: dict, key: str, kind: type, low: float, high: float | None, *, required: bool,
            allow_zero: bool = False) -> Any:
    value = data.get(key)
    if value is None:
        if required:
            raise ApiError("400 Bad Request", f"missing {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise ApiError("400 Bad Request", f"{key!r} must be a {'whole number' if kind is int else 'number'}")
    if not math.isfinite(value):
        raise ApiError("400 Bad Request", f"{key!r} must be finite")
    value = kind(value)
    positive = kind is int or allow_zero
    if value < low or (not positive and value <= 0) or (high is not None and value > high):
        bound = f">= {low}" if positive else "> 0"
        raise ApiError("400 Bad Request", f"{key!r} must be {bound}" + (f" and <= {high}" if high else ""))
    return value
