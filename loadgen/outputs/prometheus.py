"""``--prometheus HOST:PORT``: a /metrics endpoint (prometheus_client under gevent.pywsgi).

Nothing happens per request: a custom collector reads the aggregate (the merged truth of the test) at
scrape time. Label cardinality is bounded by the recorder's endpoint cap (1000 endpoints, the rest are
folded into one "other" row).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from loadgen.model.addresses import is_loopback
from loadgen.outputs.serving import parse_listen, server_url, start_server
from loadgen.stats.histogram import Counts, bucket_value

# Upper bounds in seconds of the exported latency buckets (cumulative; +Inf is added).
BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                                30.0, 60.0)
WORKER_STATES = ("running", "done", "lost")


class BucketMap:
    """Maps our log-linear bucket indexes onto fixed Prometheus bounds.

    A log-linear bucket counts toward every bound at or above its midpoint (the value our percentiles
    report for it, within 0.8% of any value inside it). Index → position lookups are memoised."""

    def __init__(self, bounds_s: Sequence[float] = BUCKETS_S) -> None:
        self.bounds_s = tuple(bounds_s)
        self.bounds_us = [round(b * 1_000_000) for b in self.bounds_s]
        self.labels = [floatToGoString(b) for b in self.bounds_s] + ["+Inf"]
        self._position: dict[int, int] = {}

    def position(self, index: int) -> int:
        pos = self._position.get(index)
        if pos is None:
            pos = self._position[index] = bisect_left(self.bounds_us, bucket_value(index))
        return pos

    def cumulative(self, hist: Counts) -> list[tuple[str, float]]:
        counts = [0] * (len(self.bounds_us) + 1)
        for index, n in hist.items():
            counts[self.position(index)] += n
        out: list[tuple[str, float]] = []
        running = 0
        for label, n in zip(self.labels, counts):
            running += n
            out.append((label, running))
        out[-1] = ("+Inf", hist.count)
        return out


class AggregateCollector(Collector):
    """Reads the controller's aggregate at scrape time."""

    def __init__(self, controller: Any, buckets: BucketMap | None = None) -> None:
        self.controller = controller
        self.buckets = buckets or BucketMap()

    def describe(self) -> list[Metric]:
        return []  # no names up front: collect() runs only on scrapes

    def collect(self) -> Iterator[Metric]:
        aggregate = self.controller.aggregate
        labels = ["method", "name"]
        requests = CounterMetricFamily("loadgen_requests", "Requests completed (successes and failures).",
                                       labels=labels)
        failures = CounterMetricFamily("loadgen_failures", "Requests that failed.", labels=labels)
        interrupted = CounterMetricFamily("loadgen_interrupted", "Requests cut off before they finished (a forced "
                                          "stop): neither successes nor failures.", labels=labels)
        duration = HistogramMetricFamily("loadgen_request_duration_seconds",
                                         "Request latency (open model: including queueing delay).", labels=labels)
        for entry in list(aggregate.entries.values()):
            key = [entry.method, entry.name]
            requests.add_metric(key, entry.requests)
            failures.add_metric(key, entry.failures)
            interrupted.add_metric(key, entry.interrupted)
            duration.add_metric(key, self.buckets.cumulative(entry.latency),
                                sum_value=entry.latency.total / 1_000_000)
        yield requests
        yield failures
        yield interrupted
        yield duration
        phases = HistogramMetricFamily(
            "loadgen_request_phase_seconds",
            "Where a request's time went: dns, connect, tls (requests that opened a connection), ttfb, body.",
            labels=[*labels, "phase"])
        for entry in list(aggregate.entries.values()):
            if entry.phases is not None:
                for phase, tally in entry.phases.items():
                    phases.add_metric([entry.method, entry.name, phase], self.buckets.cumulative(tally),
                                      sum_value=tally.total / 1_000_000)
        yield phases

        yield GaugeMetricFamily("loadgen_users", "Users running now.", value=aggregate.users)
        yield GaugeMetricFamily("loadgen_target_users", "Users the test aims for.", value=aggregate.target_users)
        workers = GaugeMetricFamily("loadgen_workers", "Worker processes by state.", labels=["state"])
        states: dict[str, int] = dict.fromkeys(WORKER_STATES, 0)
        for row in list(aggregate.workers.values()):
            states[row.state] = states.get(row.state, 0) + 1
        for state, count in states.items():
            workers.add_metric([state], count)
        yield workers
        yield GaugeMetricFamily("loadgen_elapsed_seconds", "Seconds since the test started.",
                                value=round(aggregate.elapsed(), 3))

        c = aggregate.counters
        for name, doc, value in (
            ("loadgen_connections_opened", "TCP connections opened.", c.get("opened", 0)),
            ("loadgen_tls_handshakes", "TLS handshakes (full and resumed).",
             c.get("tls_full", 0) + c.get("tls_resumed", 0)),
            ("loadgen_tls_resumed", "TLS handshakes that resumed a session.", c.get("tls_resumed", 0)),
            ("loadgen_dns_lookups", "DNS lookups (cache misses).", c.get("dns_lookups", 0)),
            ("loadgen_retries", "Requests sent again on a new connection (never sent, or idempotent).",
             c.get("retries", 0)),
            ("loadgen_idle_dropped", "Pooled connections found closed by the server before reuse.",
             c.get("idle_dropped", 0)),
            ("loadgen_connect_fallbacks", "Connects that moved on to the next resolved address.",
             c.get("connect_fallbacks", 0)),
            ("loadgen_dropped_iterations", "Open model: iterations not started (no free user).", aggregate.dropped),
        ):
            yield CounterMetricFamily(name, doc, value=value)


class PrometheusOutput:
    describe = "Prometheus metrics"

    def __init__(self, address: str, controller: Any) -> None:
        host, port = parse_listen("--prometheus", address, 9646)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(AggregateCollector(controller))
        self.server = start_server("--prometheus", address, host, port, make_wsgi_app(self.registry))
        self.url = server_url(self.server) + "/metrics"
        self.public = not is_loopback(host)

    def on_snapshot(self, snapshot: dict) -> None:
        pass  # scrapes read the aggregate directly

    def on_report(self, report: dict) -> None:
        pass

    def close(self) -> None:
        self.server.stop(timeout=1.0)
