"""Who may use the web dashboard: a bearer token for the controls and, with ``--web-private``, for the reads.

The token travels as ``Authorization: Bearer TOKEN``. The dashboard page takes it from the URL fragment
(``#token=...``: browsers never send a fragment to the server, so it is in no access log), keeps it in
sessionStorage and sends the header on its own requests.

An EventSource cannot send headers, so a private dashboard also accepts, on GET and HEAD only, a cookie it
sets in answer to a read that carried the token. The cookie is HttpOnly and SameSite=Strict, and it holds an
HMAC of the token rather than the token: it grants reads and nothing else. (Browsers send a host's cookies to
every port of that host, so another service there could receive it; it still could not change or stop the
test.) A ``?token=`` query string was the other way, but it would stay in browser history and in the logs of
any proxy in front; the cookie does not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

READS = ("GET", "HEAD")
FIX = ("send Authorization: Bearer TOKEN with the token loadgen printed at start (or the one set with "
       "--web-token or LOADGEN_WEB_TOKEN)")


def generate_token() -> str:
    """A fresh random token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def bearer(environ: dict) -> str:
    """The credentials of an ``Authorization: Bearer ...`` header ("" without one)."""
    scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


class Access:
    """The token rules of one dashboard; ``token=None`` means open to anyone who reaches it."""

    def __init__(self, token: str | None, private: bool, secure: bool) -> None:
        self.token = token
        self.private = private and token is not None
        self._secure = secure
        self._read_key = "" if token is None else \
            hmac.new(token.encode("utf-8"), b"loadgen dashboard: reads", hashlib.sha256).hexdigest()
        # named after the key: dashboards on one host (cookies ignore ports) keep their own
        self.cookie_name = f"loadgen_read_{self._read_key[:12]}"

    def refusal(self, method: str, environ: dict) -> str | None:
        """Why this request is refused (a message naming the fix), or None when it may go on."""
        if self.token is None or self._has_token(environ):
            return None
        if method in READS and (not self.private or self._has_cookie(environ)):
            return None
        if environ.get("HTTP_AUTHORIZATION"):
            return f"wrong token: {FIX}"
        if method in READS:
            return f"this dashboard is private (--web-private): {FIX}"
        return f"the controls need the dashboard's token: {FIX}"

    def set_cookie(self, method: str, environ: dict) -> tuple[str, str] | None:
        """The read cookie of a private dashboard, for a read that carried the token and not the cookie yet."""
        if not self.private or method not in READS or self._has_cookie(environ) or not self._has_token(environ):
            return None
        attributes = "; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self._secure else "")
        return "Set-Cookie", f"{self.cookie_name}={self._read_key}{attributes}"

    def _has_token(self, environ: dict) -> bool:
        given = bearer(environ)
        return bool(given) and self.token is not None and _same(given, self.token)

    def _has_cookie(self, environ: dict) -> bool:
        for part in environ.get("HTTP_COOKIE", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie_name and _same(value, self._read_key):
                return True
        return False


def announcement(url: str, token: str | None, generated: bool, private: bool) -> str | None:
    """The start line for a dashboard with a token: the URL to open (with a generated token in its fragment).

    A token the user chose is never printed: it may be in a CI log."""
    if token is None:
        return None
    needs = "the dashboard and its controls need" if private else "the controls need"
    if generated:
        return (f"loadgen: dashboard at {url}#token={quote(token, safe='')} ({needs} this token; set --web-token "
                "or LOADGEN_WEB_TOKEN to choose it)")
    return f"loadgen: dashboard at {url} ({needs} the --web-token: open {url}#token=TOKEN)"
