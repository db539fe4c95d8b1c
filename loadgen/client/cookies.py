"""A small per-host cookie jar: enough for login sessions in load tests.

Cookies are kept per response host (Domain and Path attributes are not interpreted) and sent
back to the same host; `Max-Age<=0` or an `Expires` in the past deletes a cookie.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime


def _expired(attrs: dict[str, str]) -> bool:
    max_age = attrs.get("max-age")
    if max_age is not None:
        try:
            return int(max_age) <= 0
        except ValueError:
            return False
    expires = attrs.get("expires")
    if expires:
        try:
            return parsedate_to_datetime(expires).timestamp() <= time.time()
        except (TypeError, ValueError):
            return False
    return False


class CookieJar:
    """name -> value per host; `on_change` runs whenever what would be sent changes."""

    __slots__ = ("_hosts", "on_change")

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._hosts: dict[str, dict[str, str]] = {}
        self.on_change = on_change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def set(self, name: str, value: str, host: str) -> None:
        """Set a cookie for `host` (as the request URL spells it, lower case)."""
        jar = self._hosts.setdefault(host.lower(), {})
        if jar.get(name) != value:
            jar[name] = value
            self._changed()

    def delete(self, name: str, host: str) -> None:
        jar = self._hosts.get(host.lower())
        if jar is not None and jar.pop(name, None) is not None:
            self._changed()

    def get(self, name: str, host: str, default: str | None = None) -> str | None:
        return self._hosts.get(host.lower(), {}).get(name, default)

    def header(self, host: str) -> str | None:
        """The Cookie header value for `host`, or None."""
        jar = self._hosts.get(host)
        if not jar:
            return None
        return "; ".join(f"{k}={v}" for k, v in jar.items())

    def extract(self, host: str, head: bytes) -> None:
        """Apply every Set-Cookie field of a response head received from `host`."""
        changed = False
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if not sep or name.strip().lower() != "set-cookie":
                continue
            pair, *params = value.split(";")
            cname, eq, cvalue = pair.partition("=")
            cname, cvalue = cname.strip(), cvalue.strip()
            if not eq or not cname:
                continue
            attrs = {}
            for p in params:
                k, _, v = p.partition("=")
                attrs[k.strip().lower()] = v.strip()
            jar = self._hosts.setdefault(host, {})
            if _expired(attrs):
                changed |= jar.pop(cname, None) is not None
            elif jar.get(cname) != cvalue:
                jar[cname] = cvalue
                changed = True
        if changed:
            self._changed()

    def clear(self) -> None:
        if self._hosts:
            self._hosts.clear()
            self._changed()

    def __len__(self) -> int:
        return sum(len(j) for j in self._hosts.values())
