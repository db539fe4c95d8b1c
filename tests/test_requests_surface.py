"""requests' surface on `HttpSession`, differentially: ``auth=``, ``files=``, ``cookies=``, ``verify=``/``cert=``,
the session's ``auth``/``verify``/``cert``/``cookies``, and the cookie jar's rules (Domain, Path, Secure, Max-Age,
Expires, host-only), through `requests` and through loadgen, each against its own fresh real server
(tests/misbehaving.py; 127.0.0.1 and 127.0.0.2 as two hosts, never a name). What the server saw and what each
client reported must be the same, and each case checks the truth about loadgen's run on its own.

Then ``response.history``/``.request``/``.cookies`` and auth/files/cookies against httpbin, and what is refused.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import io
import json
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

pytest.register_assert_rewrite("real_servers")

import requests  # noqa: E402
import requests.auth  # noqa: E402
import requests.cookies  # noqa: E402
from client_servers import make_cert  # noqa: E402
from differential import Run, Step, compare, run_loadgen, run_requests, seen_of  # noqa: E402
from misbehaving import MAX_REQUESTS, Peer, RawServer, answering  # noqa: E402
from real_servers import Httpbin  # noqa: E402

from loadgen.client import ClientFactory, ClientSettings, CookieJar  # noqa: E402

pytest_plugins = ["real_servers"]

SECURE = ClientSettings(connect_timeout=5.0, read_timeout=5.0)  # loadgen verifying certificates (the default)


class Sink:
    """A recorder that keeps nothing."""

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def factory(settings: ClientSettings = SECURE) -> ClientFactory:
    return ClientFactory(settings, Sink())


@dataclass(frozen=True)
class Certs:
    cert: str
    key: str
    both: str  # certificate and key in one file (cert="path")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("surface-tls")
    cert, key = make_cert(directory)
    both = directory / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return Certs(str(cert), str(key), str(both))


# ---- the servers ---------------------------------------------------------------------------------------
def lab(peer: Peer) -> None:
    """``*/set?c=COOKIE&c=...`` answers with one Set-Cookie per ``c``; ``/redirect?to=URL`` is a 302; all
    else is a 200 ``ok``."""
    for _ in range(MAX_REQUESTS):
        seen = peer.read_request()
        if seen is None:
            return
        path, _, query = seen.target.partition("?")
        args = parse_qsl(query)
        if path == "/redirect":
            peer.reply(b"", "302 Found", f"Location: {dict(args)['to']}\r\n")
            continue
        cookies = "".join(f"Set-Cookie: {v}\r\n" for k, v in args if k == "c") if path.endswith("/set") else ""
        peer.reply(b"ok", extra=cookies, head_only=seen.method == "HEAD")


def sets(*cookies: str, at: str = "/set") -> str:
    """The lab target that sets these cookies (Set-Cookie values) from path `at`."""
    return at + "?" + urlencode([("c", c) for c in cookies])


@dataclass
class Lab:
    main: RawServer  # http://127.0.0.1
    other: RawServer | None = None  # http://127.0.0.2 (or https://127.0.0.1)
    certs: Certs | None = None
    tmp: dict[str, Any] = field(default_factory=dict)

    @property
    def servers(self) -> list[RawServer]:
        return [self.main] + ([self.other] if self.other is not None else [])

    def cookie(self, target: str, server: RawServer | None = None) -> list[str]:
        """The Cookie header of each request to `target` ("" when none was sent)."""
        seen = (server or self.main).requests_for(target)
        return ["; ".join(s.header("cookie")) for s in seen]

    def auth(self, target: str, server: RawServer | None = None) -> list[str]:
        return ["; ".join(s.header("authorization")) for s in (server or self.main).requests_for(target)]


def _tls_context(certs: Certs, client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    if client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(certs.cert)
    return ctx


def two_hosts(stack: ExitStack, certs: Certs) -> Lab:
    main, other = RawServer(lab), RawServer(lab, host="127.0.0.2")
    stack.callback(main.stop)
    stack.callback(other.stop)
    return Lab(main, other, certs)


def http_and_https(stack: ExitStack, certs: Certs) -> Lab:
    main, other = RawServer(lab), RawServer(lab, tls=_tls_context(certs))
    stack.callback(main.stop)
    stack.callback(other.stop)
    return Lab(main, other, certs)


def https_only(client_cert: bool) -> Callable[[ExitStack, Certs], Lab]:
    def serve(stack: ExitStack, certs: Certs) -> Lab:
        main = RawServer(answering(), tls=_tls_context(certs, client_cert))
        stack.callback(main.stop)
        return Lab(main, None, certs)

    return serve


# ---- the cases -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    serve: Callable[[ExitStack, Certs], Lab]
    steps: Callable[[Lab], list[Step]]
    check: Callable[[Run, Lab], None]
    setup: Callable[[Any], None] | None = None  # applied to each client's session first
    secure: bool = False  # both clients verify certificates by default (else neither does)


def basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def signature(request: Any) -> Any:
    """A plain callable auth: signs method, path and body."""
    body = request.body or b""
    digest = hashlib.sha256(f"{request.method} {urlsplit(request.url).path} ".encode() + body).hexdigest()
    request.headers["X-Signature"] = digest
    return request


class TokenAuth(requests.auth.AuthBase):
    """A requests AuthBase subclass, as scripts write them."""

    def __call__(self, r: Any) -> Any:
        r.headers["Authorization"] = "Token t0k3n"
        return r


def other_url(lab: Lab, path: str) -> str:
    assert lab.other is not None
    return lab.other.url + path


def auth_basic(run: Run, lab: Lab) -> None:
    assert lab.auth("/a") == [basic(b"user", b"pass")]
    assert lab.auth("/latin") == [basic("us\u00e9r".encode("latin-1"), "p\u00e4ss".encode("latin-1"))]
    assert lab.auth("/utf8") == [basic("\u00e9".encode(), b"pw")]
    assert lab.auth("/wins") == [basic(b"u", b"p")]  # auth= wins over an Authorization header, as in requests


def auth_callables(run: Run, lab: Lab) -> None:
    (get,) = lab.main.requests_for("/signed")
    (post,) = lab.main.requests_for("/signed-post")
    assert get.header("x-signature") == [hashlib.sha256(b"GET /signed ").hexdigest()]
    assert post.header("x-signature") == [hashlib.sha256(b"POST /signed-post body").hexdigest()]
    assert lab.auth("/basic-object") == [basic(b"u", b"p")] and lab.auth("/token") == ["Token t0k3n"]


def url_credentials(run: Run, lab: Lab) -> None:
    (seen,) = lab.main.requests_for("/in-url")
    assert seen.header("authorization") == [basic(b"user", b"pa:ss")]
    assert seen.header("host") == [f"127.0.0.1:{lab.main.port}"]  # never in the Host header or the target


def session_auth(run: Run, lab: Lab) -> None:
    assert lab.auth("/s1") == [basic(b"su", b"sp")] and lab.auth("/s2") == [basic(b"su", b"sp")]
    assert lab.auth("/s3") == [basic(b"own", b"pw")]
    assert lab.auth("/s4") == [basic(b"su", b"sp")]  # the session's auth wins over URL credentials


def auth_dropped_cross_host(run: Run, lab: Lab) -> None:
    assert lab.other is not None
    assert len(lab.other.requests_for("/landing")) == 3
    assert lab.auth("/landing", lab.other) == ["", "", ""]  # auth=, session auth, URL credentials: none follows
    assert lab.auth("/landing") == [basic(b"u", b"p")]  # the same host: kept
    assert all(not o.failed for o in run.outcomes)


def multipart_boundary(seen: Any) -> str:
    (ctype,) = seen.header("content-type")
    assert ctype.startswith("multipart/form-data; boundary=")
    return str(ctype.split("boundary=")[1])


def files_encoded(run: Run, lab: Lab) -> None:
    (form,) = lab.main.requests_for("/form")
    b = multipart_boundary(form)
    assert form.body == (
        f'--{b}\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="n"\r\n\r\n1\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="n"\r\n\r\n2\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\ndata\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="g"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n'
        f"text\r\n"
        f'--{b}\r\nContent-Disposition: form-data; name="h"; filename="b.bin"\r\n'
        f"Content-Type: application/octet-stream\r\nX-Part: 1\r\n\r\n"
    ).encode() + b"\x00\x01\r\n" + f"--{b}--\r\n".encode()
    (listed,) = lab.main.requests_for("/list")
    assert b'name="up"; filename="upload.csv"\r\n\r\nx,y\n1,2\r\n' in listed.body  # a file object: its base name
    assert multipart_boundary(listed) != b  # one boundary per request
    (with_json,) = lab.main.requests_for("/json-too")
    assert b"json" not in with_json.body and b'name="f"' in with_json.body  # json= is left out, as in requests


def request_cookies(run: Run, lab: Lab) -> None:
    assert lab.cookie("/with") == ["k=new; x=1; sid=1"]  # merged with the session's, same name replaced
    assert lab.cookie("/after") == ["k=old; sid=1"]  # for that request only
    assert lab.cookie("/jar") == ["k=old; j=1; sid=1"]
    assert lab.cookie("/only-two", lab.other) == ["k=old; d=2"] and lab.cookie("/only-two") == ["k=old; sid=1"]
    # on to every hop of that request, whatever its host, as in requests
    assert lab.cookie("/redirect?" + urlencode({"to": other_url(lab, "/landing")})) == ["k=old; r=1; sid=1"]
    assert lab.other is not None and lab.cookie("/landing", lab.other) == ["k=old; r=1"]


def cookie_path(run: Run, lab: Lab) -> None:
    assert lab.cookie("/a") == ["p=1"] and lab.cookie("/a/x") == ["p=1"]
    assert lab.cookie("/b") == [""] and lab.cookie("/ab") == [""]  # Path=/a: not sent to /b
    assert lab.cookie("/dir/x") == ["d=1"] and lab.cookie("/dir") == ["d=1"]  # the default path: /dir
    assert lab.cookie("/directory") == [""] and lab.cookie("/other") == [""]
    assert lab.cookie("/deep/x") == ["b=2; z=1; a=1"]  # longest path first, then in the order set


def cookie_secure(run: Run, lab: Lab) -> None:
    assert lab.cookie("/plain") == ["plain=1"]  # Secure: not over http
    assert lab.other is not None and lab.cookie("/tls", lab.other) == ["sec=1; plain=1"]  # over https, yes


def cookie_expiry(run: Run, lab: Lab) -> None:
    # Max-Age=0 deletes m (p at another path stays); e lasts at most 2 s
    assert lab.cookie("/a/x") == ["p=1; m=1; e=1; keep=1", "p=1; e=1; keep=1", "p=1; keep=1"]
    assert lab.cookie("/gone") == ["keep=1"]  # Expires in the past: deleted, or never stored


def cookie_domains(run: Run, lab: Lab) -> None:
    assert lab.other is not None
    assert lab.cookie("/x") == ["all=1; host=1; dom=1"]  # Domain=127.0.0.2 from 127.0.0.1: refused
    assert lab.cookie("/x", lab.other) == ["all=1; two=1"]  # host-only and 127.0.0.1's domain cookie: not here


def verify_per_request(run: Run, lab: Lab) -> None:
    assert [o.failed for o in run.outcomes] == [False, True, False, False], run.outcomes
    first, with_ca, again = lab.main.seen
    assert first.conn == again.conn != with_ca.conn  # an unverified connection serves only unverified requests


def session_verify(run: Run, lab: Lab) -> None:
    assert [o.failed for o in run.outcomes] == [False, True, False], run.outcomes


def cert_per_request(run: Run, lab: Lab) -> None:
    assert [o.failed for o in run.outcomes] == [False, True, False], run.outcomes
    assert [s.target for s in lab.main.seen] == ["/cert", "/both"]  # the one without a certificate never got in


def _upload(lab: Lab) -> io.BufferedReader:
    path = Path(lab.tmp.setdefault("dir", tempfile.mkdtemp())) / "upload.csv"
    path.write_bytes(b"x,y\n1,2")
    handle = open(path, "rb")  # closed by the test's ExitStack
    lab.tmp.setdefault("open", []).append(handle)
    return handle


CASES = [
    Case("auth-basic", two_hosts, lambda s: [
        Step("GET", "/a", {"auth": ("user", "pass")}),
        Step("GET", "/latin", {"auth": ("us\u00e9r", "p\u00e4ss")}),
        Step("GET", "/utf8", {"auth": ("\u00e9".encode(), b"pw")}),
        Step("GET", "/wins", {"auth": ("u", "p"), "headers": {"Authorization": "Bearer x"}}),
    ], auth_basic),
    Case("auth-callables", two_hosts, lambda s: [
        Step("GET", "/signed", {"auth": signature}),
        Step("POST", "/signed-post", {"auth": signature, "data": b"body"}),
        Step("GET", "/basic-object", {"auth": requests.auth.HTTPBasicAuth("u", "p")}),
        Step("GET", "/token", {"auth": TokenAuth()}),
    ], auth_callables),
    Case("url-credentials", two_hosts, lambda s: [
        Step("GET", f"http://user:pa%3Ass@127.0.0.1:{s.main.port}/in-url"),
    ], url_credentials),
    Case("session-auth", two_hosts, lambda s: [
        Step("GET", "/s1"),
        Step("GET", "/s2", {"headers": {"Authorization": "Bearer x"}}),
        Step("GET", "/s3", {"auth": ("own", "pw")}),
        Step("GET", f"http://url:cred@127.0.0.1:{s.main.port}/s4"),
    ], session_auth, setup=lambda session: setattr(session, "auth", ("su", "sp"))),
    Case("auth-dropped-cross-host", two_hosts, lambda s: [
        Step("GET", "/redirect?" + urlencode({"to": other_url(s, "/landing")}), {"auth": ("u", "p")}),
        Step("GET", f"http://u:p@127.0.0.1:{s.main.port}/redirect?" + urlencode({"to": other_url(s, "/landing")})),
        Step("GET", "/redirect?to=/landing", {"auth": ("u", "p")}),
        Step("GET", "/redirect?" + urlencode({"to": other_url(s, "/landing")}), {"auth": TokenAuth()}),
    ], auth_dropped_cross_host),
    Case("files-and-form", two_hosts, lambda s: [
        Step("POST", "/form", {"data": {"k": "v", "n": ["1", "2"]}, "files": {
            "f": b"data", "g": ("a.txt", "text", "text/plain"),
            "h": ("b.bin", io.BytesIO(b"\x00\x01"), "application/octet-stream", {"X-Part": "1"})}}),
        Step("PUT", "/list", {"files": [("up", _upload(s)), ("up", ("second.txt", b"2"))], "data": [("a", "1")]}),
        Step("POST", "/json-too", {"files": {"f": b"x"}, "json": {"json": 1}}),
    ], files_encoded),
    Case("request-cookies", two_hosts, lambda s: [
        Step("GET", sets("sid=1")),
        Step("GET", "/with", {"cookies": {"k": "new", "x": "1"}}),
        Step("GET", "/after"),
        Step("GET", "/jar", {"cookies": requests.cookies.cookiejar_from_dict({"j": "1"})}),
        Step("GET", other_url(s, "/only-two"), {"cookies": _domain_jar("d", "2", "127.0.0.2")}),
        Step("GET", "/only-two", {"cookies": _domain_jar("d", "2", "127.0.0.2")}),
        Step("GET", "/redirect?" + urlencode({"to": other_url(s, "/landing")}), {"cookies": {"r": "1"}}),
    ], request_cookies, setup=lambda session: session.cookies.set("k", "old")),
    Case("cookie-path", two_hosts, lambda s: [
        Step("GET", sets("p=1; Path=/a")),
        *(Step("GET", t) for t in ("/a/x", "/a", "/b", "/ab")),
        Step("GET", sets("d=1", at="/dir/set")),
        *(Step("GET", t) for t in ("/dir/x", "/dir", "/directory", "/other")),
        Step("GET", sets("a=1; Path=/", "b=2; Path=/deep", "z=1", at="/deep/set")),
        Step("GET", "/deep/x"),
    ], cookie_path),
    Case("cookie-secure", http_and_https, lambda s: [
        Step("GET", sets("sec=1; Secure", "plain=1")),
        Step("GET", "/plain"),
        Step("GET", other_url(s, "/tls")),  # the same host (ports do not matter to cookies), over https
    ], cookie_secure),
    Case("cookie-expiry", two_hosts, lambda s: [
        Step("GET", sets("p=1; Path=/a", "m=1", "e=1; Max-Age=2", "keep=1")),
        Step("GET", "/a/x"),
        Step("GET", sets("m=; Max-Age=0", "p=; Max-Age=0; Path=/b")),  # /b's p is not /a's
        Step("GET", "/a/x"),
        Step("GET", "/a/x", think=2.2),  # e expired: the cached head must not send it
        Step("GET", sets("old=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                         "p=; Path=/a; Expires=Thu, 01 Jan 1970 00:00:00 GMT")),
        Step("GET", "/gone"),
    ], cookie_expiry),
    Case("cookie-domains", two_hosts, lambda s: [
        Step("GET", sets("host=1", "dom=1; Domain=127.0.0.1", "bad=1; Domain=127.0.0.2")),
        Step("GET", "/x"),
        Step("GET", other_url(s, "/x")),
    ], cookie_domains, setup=lambda session: (session.cookies.set("all", "1"),
                                              session.cookies.set("two", "1", domain="127.0.0.2"))),
    Case("verify-per-request", https_only(False), lambda s: [
        Step("GET", "/unverified", {"verify": False}),
        Step("GET", "/verified"),  # the default: verify (a self-signed certificate fails)
        Step("GET", "/with-ca", {"verify": s.certs.cert if s.certs else None}),
        Step("GET", "/unverified-again", {"verify": False}),
    ], verify_per_request, secure=True),
    Case("session-verify", https_only(False), lambda s: [
        Step("GET", "/off"),
        Step("GET", "/on", {"verify": True}),
        Step("GET", "/off-again"),
    ], session_verify, setup=lambda session: _no_verify(session), secure=True),
    Case("cert-per-request", https_only(True), lambda s: [
        Step("GET", "/cert", {"verify": s.certs.cert, "cert": (s.certs.cert, s.certs.key)} if s.certs else {}),
        Step("GET", "/no-cert", {"verify": s.certs.cert if s.certs else None}),
        Step("GET", "/both", {"verify": s.certs.cert, "cert": s.certs.both} if s.certs else {}),
    ], cert_per_request, secure=True),
]


def _no_verify(session: Any) -> None:
    session.verify = False
    if isinstance(session, requests.Session):
        session.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, wins over session.verify (requests#3829)


def _domain_jar(name: str, value: str, domain: str) -> http.cookiejar.CookieJar:
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(requests.cookies.create_cookie(name, value, domain=domain))
    return jar


def _normalised(seen: list[Any]) -> list[Any]:
    """seen_of() with each multipart boundary replaced by BOUNDARY (it is random per request)."""
    out = []
    for method, target, headers, body in seen_of(seen):
        target = re.sub(r"(%3A|:)\d+", r"\1PORT", target)  # another server's port, in a redirect's query
        found = [v.split("boundary=")[1] for k, v in headers if k == "content-type" and "boundary=" in v]
        if found:
            headers = tuple((k, v.replace(found[0], "BOUNDARY")) for k, v in headers)
            body = body.replace(found[0].encode(), b"BOUNDARY")
        out.append((method, target, headers, body))
    return out


def _run(case: Case, client: str, certs: Certs) -> tuple[Run, Lab]:
    with ExitStack() as stack:
        servers = case.serve(stack, certs)
        steps = case.steps(servers)
        for handle in servers.tmp.get("open", []):
            stack.callback(handle.close)
        if client == "requests":
            outcomes = run_requests(servers.main.url, steps, verify=None if case.secure else False, setup=case.setup)
        else:
            outcomes = run_loadgen(servers.main.url, steps, SECURE if case.secure else None, setup=case.setup)
        seen = [s for server in servers.servers for s in server.seen]
        return Run(outcomes, _normalised(seen), seen), servers


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, certs: Certs) -> None:
    ours, servers = _run(case, "loadgen", certs)
    case.check(ours, servers)
    theirs, _ = _run(case, "requests", certs)
    diffs = compare(theirs, ours, frozenset())
    assert not diffs, "\n".join(diffs)


# ---- against httpbin -------------------------------------------------------------------------------------
@pytest.fixture
def clients(httpbin_server: Httpbin) -> Iterator[tuple[requests.Session, Any]]:
    f = factory()
    theirs = requests.Session()
    yield theirs, f.session(httpbin_server.url)
    theirs.close()
    f.close_all()


def _request_view(r: Any) -> tuple[Any, ...]:
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in ("user-agent", "connection", "host")}
    body = r.body.encode() if isinstance(r.body, str) else r.body
    return r.method, re.sub(r":\d+/", ":PORT/", r.url), headers, body


def _view(r: Any) -> tuple[Any, ...]:
    """What a script reads of a response: status, URL, the history, the request, the cookies set."""
    hops = [(h.status_code, re.sub(r":\d+/", ":PORT/", h.url), h.headers.get("location"), h.cookies.get_dict(),
             _request_view(h.request)) for h in r.history]
    return (r.status_code, re.sub(r":\d+/", ":PORT/", r.url), hops, _request_view(r.request), r.cookies.get_dict(),
            sorted(r.cookies.keys()))


def test_history_request_and_cookies_as_requests(httpbin_server: Httpbin, clients: tuple[requests.Session, Any]) -> None:
    theirs, ours = clients
    base = httpbin_server.url
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/cookies/set?k=v&j=w", {}),
        ("GET", "/redirect/2", {}),
        ("GET", "/response-headers?Set-Cookie=a%3D1&Set-Cookie=b%3D2%3B%20Path%3D%2F", {}),
        ("POST", "/redirect-to?url=/anything&status_code=303", {"data": b"gone"}),
        ("POST", "/redirect-to?url=/anything&status_code=307", {"data": {"f": "1"}}),
        ("GET", "/get", {"params": {"q": "1"}, "headers": {"X-A": "b"}}),
    ]
    for method, path, kwargs in calls:
        a = theirs.request(method, base + path, timeout=5, **kwargs)
        b = ours.request(method, path, **kwargs)
        assert _view(b) == _view(a), (path, _view(a), _view(b))
    r = ours.get("/response-headers?Set-Cookie=a%3D1")
    assert r.cookies["a"] == "1" and r.cookies.get("a") == "1" and "a" in r.cookies and r.cookies.get("zz") is None
    assert [c.name for c in r.cookies] == ["a"] and dict(r.cookies.items()) == {"a": "1"}
    assert ours.get("/get").history is ours.get("/get").history == []  # one shared empty list
    hop = ours.get("/redirect/1")
    assert [h.status_code for h in hop.history] == [302] and hop.history[0].headers["location"] == "/get"


def test_httpbin_auth_files_and_cookies(httpbin_server: Httpbin) -> None:
    steps = [
        Step("GET", "/basic-auth/user/passwd", {"auth": ("user", "passwd")}),
        Step("GET", "/basic-auth/user/passwd"),
        Step("GET", "/basic-auth/user/passwd", {"auth": ("user", "wrong")}),
        Step("GET", "/hidden-basic-auth/user/passwd"),
        Step("GET", "/hidden-basic-auth/user/passwd", {"auth": requests.auth.HTTPBasicAuth("user", "passwd")}),
        Step("GET", httpbin_server.url.replace("http://", "http://user:passwd@") + "/basic-auth/user/passwd"),
        Step("POST", "/anything", {"files": {"f": ("r\u00e9sum\u00e9.txt", "caf\u00e9", "text/plain"), "g": b"\x00"},
                                    "data": {"field": "value"}}),
        Step("GET", "/cookies/set?k=v"),
        Step("GET", "/cookies", {"cookies": {"extra": "1"}}),
        Step("GET", "/cookies"),
        Step("GET", "/cookies/delete?k"),
    ]
    theirs = run_requests(httpbin_server.url, steps)
    ours = run_loadgen(httpbin_server.url, steps)
    assert [(o.status, o.failed) for o in ours] == [(o.status, o.failed) for o in theirs]
    assert [o.status for o in ours] == [200, 401, 401, 404, 200, 200, 200, 200, 200, 200, 200]

    def echoed(o: Any) -> Any:
        data = json.loads(o.body)
        data.pop("origin", None)
        headers = data.get("headers", {})
        for name in ("User-Agent", "Connection", "Content-Type", "Content-Length"):
            headers.pop(name, None)
        return data

    for i in (0, 4, 5, 6, 8, 9, 10):
        assert echoed(ours[i]) == echoed(theirs[i]), (steps[i], theirs[i].body, ours[i].body)
    assert json.loads(ours[6].body)["files"] == {"f": "caf\u00e9", "g": "\x00"}
    assert json.loads(ours[8].body)["cookies"] == {"k": "v", "extra": "1"}
    assert json.loads(ours[9].body)["cookies"] == {"k": "v"} and json.loads(ours[10].body)["cookies"] == {}


# ---- what is accepted, refused and kept apart -------------------------------------------------------------
def test_meaningless_arguments_accepted_others_refused() -> None:
    with ExitStack() as stack:
        server = RawServer(answering())
        stack.callback(server.stop)
        f = factory()
        stack.callback(f.close_all)
        s = f.session(server.url)
        for kwargs in ({"stream": False}, {"hooks": None}, {"hooks": {}}, {"proxies": None}, {"proxies": {}},
                       {"context": {"user": 1}}, {"cookies": {}}, {"files": {}}, {"auth": None}):
            assert s.get("/", **kwargs).ok, kwargs
        refused: list[tuple[dict[str, Any], str]] = [
            ({"hooks": {"response": print}}, "hooks= is not supported"),
            ({"auth": requests.auth.HTTPDigestAuth("u", "p")}, "HTTPDigestAuth"),
        ]
        for kwargs, message in refused:
            with pytest.raises(NotImplementedError, match=re.escape(message)):
                s.get("/", **kwargs)
        with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
            s.get("/", bogus=1)
        with pytest.raises(TypeError, match="auth= must be"):
            s.get("/", auth="user:pass")
        with pytest.raises(ValueError, match="verify="):
            s.get("https://127.0.0.1:1/", verify="/no/such/ca.pem")
        assert len(server.seen) == 9


def test_verbs_take_requests_positional_arguments() -> None:
    """get(url, params), post(url, data, json), put/patch(url, data), and the extras through every verb."""
    def calls(c: Any, base: str) -> None:
        c.get(base + "/g", {"a": "1"})
        c.post(base + "/p", {"f": "1"}, {"ignored": 1})
        c.post(base + "/j", None, {"j": 1})
        c.put(base + "/u", b"x")
        c.patch(base + "/pa", "y")
        c.delete(base + "/d", auth=("u", "p"))
        c.options(base + "/o", cookies={"c": "1"})
        c.head(base + "/redirect?to=/elsewhere")  # not followed

    seen = {}
    for client in ("requests", "loadgen"):
        with ExitStack() as stack:
            server = RawServer(lab)
            stack.callback(server.stop)
            if client == "requests":
                session: Any = stack.enter_context(requests.Session())
            else:
                f = factory(ClientSettings(connect_timeout=5.0, read_timeout=5.0))
                stack.callback(f.close_all)
                session = f.session("")
            calls(session, server.url)
            seen[client] = seen_of(server.seen)
    assert seen["loadgen"] == seen["requests"]
    assert [s[1] for s in seen["loadgen"]] == ["/g?a=1", "/p", "/j", "/u", "/pa", "/d", "/o", "/redirect?to=/elsewhere"]


def test_session_tls_settings_read_back(certs: Certs) -> None:
    f = factory()
    s = f.session("https://127.0.0.1:1")
    assert s.verify is None and s.cert is None
    s.verify, s.cert = False, (certs.cert, certs.key)
    assert s.verify is False and s.cert == (certs.cert, certs.key)
    assert s._origin.tls_settings is not None and s._origin.tls_settings.insecure
    s.verify = s.cert = None
    assert s._origin.tls_settings is None  # back on the factory's connections
    f.close_all()


# ---- the jar on its own (no server: names never resolve) --------------------------------------------------
def test_jar_keeps_the_old_api_and_reads_like_requests() -> None:
    changes: list[int] = []
    jar = CookieJar(lambda: changes.append(1))
    jar.set("sid", "abc", "127.0.0.1")
    jar.set("theme", "dark")  # every host
    jar.set("d", "1", domain="example.com", path="/app")
    assert jar.get("sid", "127.0.0.1") == "abc" and jar.get("sid", "127.0.0.2") is None and jar.get("sid") == "abc"
    assert jar["theme"] == "dark" and "d" in jar and len(jar) == 3
    assert jar.get_dict() == {"sid": "abc", "theme": "dark", "d": "1"} and jar.get_dict(domain="example.com") == {"d": "1"}
    assert jar.header("http://127.0.0.1/x") == "sid=abc; theme=dark"
    assert jar.header("http://www.example.com/app/x") == "d=1; theme=dark"
    n = len(changes)
    jar.set("sid", "abc", "127.0.0.1")  # the same again: nothing to re-encode
    assert len(changes) == n
    jar.delete("sid", "127.0.0.1")
    del jar["theme"]
    jar.set("d", None, domain="example.com")
    assert len(jar) == 0 and len(changes) == n + 3
    jar.clear()
    assert len(changes) == n + 3  # clearing an empty jar changes nothing


def test_host_only_cookies_stay_on_their_host() -> None:
    """RFC 6265's host-only flag: a cookie set without Domain is not sent to sub-domains (http.cookiejar, and so
    requests, would send it); one with Domain is."""
    jar = CookieJar()
    head = b"HTTP/1.1 200 OK\r\nSet-Cookie: host=1\r\nSet-Cookie: dom=1; Domain=example.com\r\n"
    jar.extract("http://example.com/", head)
    assert jar.header("http://example.com/") == "host=1; dom=1"
    assert jar.header("http://www.example.com/") == "dom=1"
    theirs = requests.cookies.RequestsCookieJar()
    theirs.extract_cookies(_Head(head), _Url("http://example.com/"))  # type: ignore[arg-type]
    sub = _Url("http://www.example.com/")
    theirs.add_cookie_header(sub)  # type: ignore[arg-type]
    assert sub.get_new_headers()["Cookie"] == "host=1; dom=1"  # requests: the host-only one goes too


class _Head:
    def __init__(self, head: bytes) -> None:
        self._lines = head.decode().split("\r\n")[1:]

    def info(self) -> _Head:
        return self

    def get_all(self, name: str, default: Any = None) -> list[str]:
        return [v.strip() for k, _, v in (ln.partition(":") for ln in self._lines) if k.lower() == name.lower()] or default


class _Url(requests.cookies.MockRequest):
    def __init__(self, url: str) -> None:
        super().__init__(requests.Request("GET", url).prepare())


def test_multipart_matches_requests_byte_for_byte() -> None:
    from loadgen.client.multipart import encode_multipart

    cases: list[tuple[Any, Any]] = [
        ({"a": "1", "b": ["x", 2], "n": None}, {"f": b"data"}),
        ([("a", b"\xff")], [("f", ("na\"me.txt", b"abc", "text/plain", {"X-Extra": "1", "Content-Type": "zz"})),
                            ("g", ("caf\u00e9.bin", "str"))]),
        ({}, {"f": ("f", None), "h": ("h.txt", b"x", None), "i": 7}),
    ]
    for data, files in cases:
        prepared = requests.Request("POST", "http://x/", data=data, files=files).prepare()
        ctype = prepared.headers["Content-Type"]
        assert encode_multipart(data, files, ctype.split("boundary=")[1]) == (prepared.body, ctype)
    with pytest.raises(ValueError, match="not a string"):
        encode_multipart("a=1", {"f": b"x"})


def test_expiring_cookie_leaves_the_cached_head() -> None:
    """A head cached with a cookie is not sent once the cookie expires (the cache empties itself)."""
    with ExitStack() as stack:
        server = RawServer(lab)
        stack.callback(server.stop)
        f = factory()
        stack.callback(f.close_all)
        s = f.session(server.url)
        s.get(sets("short=1; Max-Age=2", "long=1"))
        for _ in range(3):
            s.get("/page")
        time.sleep(2.2)
        s.get("/page")
        assert [c for c in Lab(server).cookie("/page")] == ["short=1; long=1"] * 3 + ["long=1"]
