"""`PreparedRequest`: a request as it goes out, with case-insensitive headers (pure).

It is what ``response.request`` shows (built from the bytes sent, only when read) and what an ``auth=``
callable is given and returns, as requests' `PreparedRequest` is."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, NoReturn


def sent_target(wire: bytes) -> str:
    """The request target of the request in `wire` (its request line's second word), in origin form
    (a request to a proxy names the absolute URL: its path and query)."""
    target = wire[: wire.find(b"\r\n")].split(b" ", 2)[1].decode("latin-1")
    if target[:1] != "/" and "://" in target:
        slash = target.find("/", target.find("://") + 3)
        return target[slash:] if slash >= 0 else "/"
    return target


class RequestHeaders(MutableMapping[str, str]):
    """A dict of header fields, by name in any case; keeps the spelling last set."""

    __slots__ = ("_items",)

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        if fields:
            self.update(fields)

    def __setitem__(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class PreparedRequest:
    """``method``, ``url`` (target percent-encoded, as sent), ``headers`` and ``body`` (bytes or None)."""

    __slots__ = ("method", "url", "headers", "body")

    def __init__(self, method: str, url: str, headers: MutableMapping[str, str], body: bytes | None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body

    @classmethod
    def from_wire(cls, prefix: str, wire: bytes) -> PreparedRequest:
        """The request in `wire` (request line, header lines, blank line, body) sent to `prefix`."""
        head, _, body = wire.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.rpartition(" ")[0]
        headers = RequestHeaders()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name] = value.strip()
        return cls(method, prefix + target, headers, body or None)

    @property
    def path_url(self) -> str:
        """The request target (path and query)."""
        after = self.url.split("://", 1)[-1]
        slash = after.find("/")
        return after[slash:] if slash >= 0 else "/"

    def register_hook(self, event: str, hook: Any) -> NoReturn:
        raise NotImplementedError("auth= that needs response hooks (requests' HTTPDigestAuth) is not supported: "
                                  "send the Authorization header it would compute with headers=")

    def __repr__(self) -> str:
        return f"<PreparedRequest [{self.method}]>"
