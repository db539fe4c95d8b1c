"""Warnings about the load that could not be delivered, each with advice that is runnable and right for its
cause: missed pacing starts (slow responses, or a generator out of CPU), dropped iterations, connection churn,
and requests the stop cut off. Re-evaluated every second, so their counts stay live."""

from __future__ import annotations

from loadgen.model.health import CPU_WARN_PERCENT
from loadgen.stats.aggregate import Aggregate

CHURN_AFTER = 20  # requests before connection churn is judged


class Advisor:
    """Remembers what it has seen (a generator that ran out of CPU) so its advice does not flip back."""

    def __init__(self, stop_timeout: float, remote: bool = False) -> None:
        self.stop_timeout = stop_timeout
        self.remote = remote  # a master's fleet: CPU comes from worker processes and machines
        self.cpu_bound = False

    def scale(self) -> str:
        if self.remote:
            return "start the workers with 'loadgen worker --processes auto' or add worker machines"
        return "rerun with --processes auto (one process per core)"

    def observe(self, aggregate: Aggregate) -> None:
        """Once a second: is any generator process out of CPU?"""
        if any(row.cpu_percent > CPU_WARN_PERCENT for row in aggregate.workers.values() if row.state == "running"):
            self.cpu_bound = True

    def warn(self, aggregate: Aggregate, final: bool = False) -> None:
        self.observe(aggregate)
        if aggregate.missed:
            aggregate.warn("pacing", self._pacing(aggregate), key="pacing")
        if aggregate.dropped:
            cause = (f"the generator is out of CPU (over {CPU_WARN_PERCENT:.0f}%): {self.scale()}" if self.cpu_bound
                     else "every user was busy: raise --max-users")
            aggregate.warn("dropped", f"{aggregate.dropped:,} iterations could not start within 1 s of their "
                           f"intended time (timeline 'dropped'); {cause}", key="dropped")
        churn = self._churn(aggregate)
        if churn is not None:
            aggregate.warn("connections", churn, key="connections")
        if final:
            self._interrupted(aggregate)

    def _pacing(self, aggregate: Aggregate) -> str:
        missed = aggregate.missed
        scheduled = missed + aggregate.iterations
        share = f" of {scheduled:,} ({100 * missed / scheduled:.0f}%)" if scheduled else ""
        head = f"{missed:,} scheduled task starts{share} were missed so far (timeline 'missed')"
        if self.cpu_bound:
            return (f"{head}: the generator is out of CPU (over {CPU_WARN_PERCENT:.0f}%), so it cannot start "
                    f"tasks on time and more users would make it worse; {self.scale()}")
        return (f"{head}: tasks took longer than their pacing interval; each user runs one task at a time, so add "
                "users (the same total rate, spread over more of them) or lengthen the interval; if latency grows "
                "as users are added, the target is saturated, and that is the finding")

    def _churn(self, aggregate: Aggregate) -> str | None:
        counters = aggregate.counters
        requests = counters.get("requests", 0)
        opened = counters.get("opened", 0)
        # every user's first connection is unavoidable; reconnects are the cost worth a warning
        reconnects = opened - max(aggregate.peak_users, aggregate.users)
        if requests < CHURN_AFTER or reconnects <= requests / 2:
            return None
        per_second = opened / max(aggregate.elapsed(), 1e-3)
        full, resumed = counters.get("tls_full", 0), counters.get("tls_resumed", 0)
        tls = f", {full:,} full and {resumed:,} resumed TLS handshakes" if full or resumed else ""
        cpu = (f"; they are what this generator spends its CPU on (over {CPU_WARN_PERCENT:.0f}%): {self.scale()}"
               if self.cpu_bound else "")
        return (f"{opened:,} connections were opened for {requests:,} requests ({per_second:,.0f}/s{tls}): each "
                f"costs a TCP connect and, over HTTPS, a TLS handshake{cpu}; keep connections alive "
                "(keep_alive = True, the default) unless churn is the point (docs/connections.md: what a new "
                "connection costs)")

    def _interrupted(self, aggregate: Aggregate) -> None:
        """Say how many requests the stop cut off, and where."""
        cut = [(entry.interrupted, entry.method, entry.name) for entry in aggregate.entries.values()
               if entry.interrupted]
        if not cut:
            return
        cut.sort(reverse=True)
        where = ", ".join(f"{method} {name} ({count})" for count, method, name in cut[:3])
        aggregate.warn(
            "interrupted",
            f"{sum(count for count, _, _ in cut)} requests were cut off by the stop before they finished: {where}; "
            "they are counted as interrupted (neither successes nor failures, not in the latencies); give them "
            f"longer with --stop-timeout (it was {self.stop_timeout:g} s) or shorter timeouts in the script",
            key="interrupted")
