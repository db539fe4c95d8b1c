"""DNS cache: TTL-bounded answers, negative caching, coalesced lookups, address spreading.

The resolver is any callable `resolver(host, port) -> list of IP strings` (IPv4 and/or IPv6),
raising `socket.gaierror` (or any OSError) on failure; one call is one counted lookup.

A lookup asks for both families at once (the built-in resolvers, gevent's configured one or
`dns_server="HOST:PORT"` through c-ares, send an A and an AAAA question); every address is kept,
IPv4 first unless `ipv6` prefers IPv6, so a connect that fails can move on to the next address.
"""

from __future__ import annotations

import random
import socket as _stdsocket
import time
from collections.abc import Callable

from gevent.event import AsyncResult

from loadgen.model.addresses import parse_host_port

from .counters import COUNTERS, ConnectionCounters

Resolver = Callable[[str, int], list[str]]


def _is_ipv6(addr: str) -> bool:
    return ":" in addr


def literal_ip(host: str) -> str | None:
    """`host` itself if it is an IPv4/IPv6 literal (brackets stripped), else None."""
    h = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    for fam in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
        try:
            _stdsocket.inet_pton(fam, h)
        except (OSError, ValueError):
            continue
        return h
    return None


def system_resolver(host: str, port: int, family: int = 0) -> list[str]:
    """Resolve through gevent's configured resolver (cooperative); IPs in resolver order."""
    from gevent import socket as gsocket

    infos = gsocket.getaddrinfo(host, port, family, _stdsocket.SOCK_STREAM)
    return _unique(info[4][0] for info in infos)


def parse_server(server: str) -> tuple[str, int]:
    """("HOST", PORT) from "HOST:PORT", "[V6]:PORT", "HOST" or a bare IPv6 (port 53)."""
    address = parse_host_port(server, default_port=53)
    return address.host, address.port


def server_resolver(server: str) -> Resolver:
    """A resolver that queries one DNS server ("HOST:PORT" or "HOST") directly via c-ares."""
    from gevent.resolver.ares import Resolver as AresResolver

    host, port = parse_server(server)
    # tries=2: one retry of an unanswered (or refused) question, not c-ares' default of 3 tries
    ares = AresResolver(servers=host, udp_port=port, tcp_port=port, use_environ=False, tries=2)

    def resolve(name: str, port_: int, family: int = 0) -> list[str]:
        infos = ares.getaddrinfo(name, port_, family, _stdsocket.SOCK_STREAM)
        return _unique(info[4][0] for info in infos)

    return resolve


def _unique(addrs: object) -> list[str]:
    seen: dict[str, None] = {}
    for a in addrs:  # type: ignore[attr-defined]
        seen.setdefault(a, None)
    return list(seen)


class _Entry:
    __slots__ = ("addrs", "error", "expires", "next")

    def fail(self, host: str) -> OSError:
        """A new `gaierror` per raise ("[Errno N] cannot resolve HOST: REASON"): re-raising one
        stored instance would grow its traceback (keeping every frame it passed through alive)
        with each failed connect."""
        err = self.error
        errno = getattr(err, "errno", None)
        reason = (getattr(err, "strerror", None) or str(err)) if err is not None else "no address"
        message = f"cannot resolve {host}: {reason}"
        return _stdsocket.gaierror(errno, message) if errno is not None else _stdsocket.gaierror(message)

    def __init__(self, addrs: list[str], error: BaseException | None, expires: float) -> None:
        self.addrs = addrs
        self.error = error
        self.expires = expires
        self.next = 0


class DnsCache:
    """Caches resolver answers for `ttl` seconds (0 = no cache) and failures for `negative_ttl`."""

    def __init__(
        self,
        ttl: float = 300.0,
        select: str = "round-robin",
        ipv6: bool = False,
        resolver: Resolver | None = None,
        negative_ttl: float = 5.0,
        counters: ConnectionCounters = COUNTERS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.ttl = ttl
        self.select = select
        self.ipv6 = ipv6
        self.resolver: Resolver = resolver or system_resolver
        self.negative_ttl = negative_ttl
        self.counters = counters
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._inflight: dict[tuple[str, int], AsyncResult] = {}
        self.paid = False  # whether the last addresses()/lookup() waited for a DNS answer

    def resolve(self, host: str, port: int) -> str:
        """One address for a new connection to host:port, spread per `select`."""
        lit = literal_ip(host)
        if lit is not None:
            return lit
        entry = self._entry(host, port)
        addrs = entry.addrs
        if len(addrs) == 1 or self.select == "first":
            return addrs[0]
        if self.select == "random":
            return random.choice(addrs)
        i = entry.next
        entry.next = i + 1
        return addrs[i % len(addrs)]

    def addresses(self, host: str, port: int) -> list[str]:
        """Every address for a new connection, in the order to try them: the one `select` picks
        first, then the others (a connect that fails moves on to the next). Afterwards `paid` says
        whether this call waited for a lookup (its own or another's), not a cached answer."""
        lit = literal_ip(host)
        if lit is not None:
            self.paid = False
            return [lit]
        entry = self._entry(host, port)
        addrs = entry.addrs
        n = len(addrs)
        if n == 1 or self.select == "first":
            return addrs
        if self.select == "random":
            i = random.randrange(n)
        else:
            i = entry.next % n
            entry.next = i + 1
        return addrs[i:] + addrs[:i]

    def lookup(self, host: str, port: int) -> list[str]:
        """Every usable address for host:port (preferred family first)."""
        lit = literal_ip(host)
        if lit is not None:
            return [lit]
        return list(self._entry(host, port).addrs)

    def clear(self) -> None:
        self._entries.clear()

    def _entry(self, host: str, port: int) -> _Entry:
        key = (host, port)
        entry = self._entries.get(key)
        now = self.clock()
        self.paid = False
        if entry is not None and entry.expires > now:
            self.counters.dns_hits += 1
            if entry.error is not None:
                raise entry.fail(host)
            return entry
        waiting = self._inflight.get(key)
        if waiting is not None:  # someone is already asking: share the answer
            self.counters.dns_hits += 1
            entry = waiting.get()
            self.paid = True
            if entry.error is not None:
                raise entry.fail(host)
            return entry
        result = AsyncResult()
        self._inflight[key] = result
        entry = _Entry([], OSError(f"lookup of {host} interrupted"), 0.0)
        try:
            entry = self._query(host, port)
        finally:
            del self._inflight[key]
            result.set(entry)
        self.paid = True
        if self.ttl > 0 and (entry.error is None or self.negative_ttl > 0):
            if len(self._entries) >= self.max_entries:
                self._prune(now)
            self._entries[key] = entry
        if entry.error is not None:
            raise entry.fail(host)
        return entry

    def _query(self, host: str, port: int) -> _Entry:
        try:
            self.counters.dns_lookups += 1
            addrs = self._order(self.resolver(host, port))
            if not addrs:
                raise _stdsocket.gaierror(_stdsocket.EAI_NONAME, "Name or service not known")
        except OSError as exc:  # gaierror, timeouts from the resolver
            self.counters.dns_failures += 1
            exc.__traceback__ = None  # kept for negative_ttl: no frames with it
            return _Entry([], exc, self.clock() + self.negative_ttl)
        return _Entry(addrs, None, self.clock() + self.ttl)

    def _order(self, addrs: list[str]) -> list[str]:
        """Every address, IPv4 first (IPv6 first with `ipv6`), each family in the resolver's order."""
        v4 = [a for a in addrs if not _is_ipv6(a)]
        v6 = [a for a in addrs if _is_ipv6(a)]
        return v6 + v4 if self.ipv6 else v4 + v6

    def _prune(self, now: float) -> None:
        entries = self._entries
        for key in [k for k, e in entries.items() if e.expires <= now]:
            del entries[key]
        if len(entries) >= self.max_entries:
            entries.clear()
