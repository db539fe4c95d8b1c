"""Phase timings (DNS, connect, TLS, TTFB, body): the sparse tallies, their wire form, and every output."""

from __future__ import annotations

import random

import pytest

from loadgen.outputs.summary import format_summary
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.histogram import Histogram
from loadgen.stats.phases import PHASES, Phases, Tally
from loadgen.stats.recorder import Recorder
from loadgen.stats.wire import WireError, decode_delta, encode_delta


def test_tally_percentiles_are_the_histograms() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(8, 1.5)) for _ in range(5000)] + [0, 1, 127, 128, 10**9]
    tally, hist = Tally(), Histogram()
    for v in values:
        tally.add(v)
        hist.add(v)
    qs = (0.5, 0.9, 0.95, 0.99, 0.999)
    assert tally.percentiles(qs) == [min(p, hist.max) for p in hist.percentiles(qs)]
    assert (tally.count, tally.total, tally.max) == (hist.count, hist.total, hist.max)
    assert len(tally.counts) < 1000  # sparse: only the buckets it uses (a dense histogram has 2,240)


def _recorder_with_phases() -> Recorder:
    rec = Recorder()
    rec.record("GET", "/a", 5000, 100, ttfb_us=3000, body_us=1500, setup=(-1, 200, 900))  # new https connection
    for _ in range(9):
        rec.record("GET", "/a", 4000, 100, ttfb_us=3000, body_us=800)  # kept alive
    rec.record("GET", "/b", 9000, 10, ttfb_us=8000, body_us=600, setup=(400, 100, -1))  # lookup, plain http
    rec.record("measure", "boto3", 2000, 0)  # not HTTP: no phases
    return rec


def test_only_paid_phases_exist_and_travel_the_wire() -> None:
    delta = _recorder_with_phases().flush()
    a = delta.entries[("GET", "/a")].phases
    assert a is not None and [name for name, _ in a.items()] == ["connect", "tls", "ttfb", "body"]
    assert a.ttfb.count == 10 and a.connect is not None and a.connect.count == 1
    assert delta.entries[("measure", "boto3")].phases is None
    back = decode_delta(encode_delta(delta))
    b = back.entries[("GET", "/b")].phases
    assert b is not None and [name for name, _ in b.items()] == ["dns", "connect", "ttfb", "body"]
    assert b.dns is not None and b.dns.max == 400


@pytest.mark.parametrize("bad", [
    [None] * 6,  # a phase too many
    [None, None, None, [1, 1, 1, 0, 0], None],  # the counts ("C") no longer line up
    [None, None, None, [10**9, 1, 1, 0, 0], None],
    [None, None, None, [1.5, 1, 1, 0, 0], None],
    [None, None, None, [1, 1, 1, 0, 0, 0], None],  # a phase keeps no minimum
    {"ttfb": [0, 0, 0, 0, 0]},
])
def test_malformed_phases_are_refused(bad: object) -> None:
    wire = encode_delta(_recorder_with_phases().flush())
    wire["e"]["ph"][0] = bad
    with pytest.raises(WireError):
        decode_delta(wire)


def test_report_summary_and_snapshot_show_the_phases() -> None:
    agg = Aggregate()
    for worker in ("w1", "w2"):
        agg.add_delta(worker, decode_delta(encode_delta(_recorder_with_phases().flush())))
    snapshot = agg.tick()
    report = agg.report()
    a = next(e for e in report["endpoints"] if e["name"] == "/a")
    assert set(a["phases_ms"]) == {"connect", "tls", "ttfb", "body"}
    assert a["phases_ms"]["ttfb"]["count"] == 20 and a["phases_ms"]["tls"]["count"] == 2
    assert a["phases_ms"]["ttfb"]["p50"] == pytest.approx(3.0, rel=0.01)
    assert set(report["totals"]["phases_ms"]) == set(PHASES)
    assert "phases_ms" not in next(e for e in report["endpoints"] if e["name"] == "boto3")
    live = next(e for e in snapshot["endpoints"] if e["name"] == "/a")
    assert live["phases"]["tls"]["count"] == 2
    text = format_summary(report)
    assert "Where the time went" in text
    line = next(ln for ln in text.split("Where the time went")[1].splitlines() if "/a" in ln)
    assert "(2)" in line  # TLS and connect: paid by the 2 requests that opened a connection


def test_phases_merge() -> None:
    one, two = Phases(), Phases()
    one.ttfb.add(10)
    two.ttfb.add(20)
    two.add_setup(5, 6, -1)
    one.merge(two)
    assert one.ttfb.count == 2 and one.dns is not None and one.dns.count == 1 and one.tls is None


def test_html_and_prometheus_show_the_phases() -> None:
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from loadgen.outputs.html_report import render_body
    from loadgen.outputs.prometheus import AggregateCollector

    agg = Aggregate()
    agg.add_delta("w1", _recorder_with_phases().flush())
    html = render_body(agg.report())
    assert "Where the time went" in html and "0.90/0.90 (1)" in html
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AggregateCollector(SimpleNamespace(aggregate=agg)))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    samples = families["loadgen_request_phase_seconds"].samples
    counts = {(s.labels["name"], s.labels["phase"]): s.value for s in samples if s.name.endswith("_count")}
    assert counts == {("/a", "connect"): 1, ("/a", "tls"): 1, ("/a", "ttfb"): 10, ("/a", "body"): 10,
                      ("/b", "dns"): 1, ("/b", "connect"): 1, ("/b", "ttfb"): 1, ("/b", "body"): 1}


def test_the_client_measures_each_phase(tmp_path: object) -> None:
    """Against real servers on loopback: a new connection pays connect (and TLS for https), a kept-alive one
    pays none; time to first byte holds the server's think time, body the rest."""
    import ssl
    from pathlib import Path

    from client_servers import FakeRecorder, make_cert
    from misbehaving import answering, serving, slow_path

    from loadgen.client import ClientFactory, ClientSettings

    assert isinstance(tmp_path, Path)
    recorder = FakeRecorder()
    with serving(slow_path("/think", 0.3)) as server:
        factory = ClientFactory(ClientSettings(), recorder)
        try:
            session = factory.session(server.url)
            first, second = session.get("/think"), session.get("/")
            with session.get("/", catch_response=True) as third:
                third.success()
        finally:
            factory.close_all()
    assert [r.error for r in (first, second, third)] == [None] * 3
    (ttfb1, body1, setup1), (ttfb2, _, setup2), (_, _, setup3) = recorder.phases
    assert setup1 is not None and setup1[0] == -1 and setup1[1] >= 0 and setup1[2] == -1  # IP literal, plain http
    assert setup2 is None and setup3 is None  # kept alive
    assert 300_000 <= ttfb1 < first.latency_us and 0 <= body1 < 100_000 and ttfb2 < 100_000
    cert = make_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, cert))
    recorder = FakeRecorder()
    with serving(answering(), tls=ctx) as server:
        factory = ClientFactory(ClientSettings(insecure=True), recorder)
        try:
            assert factory.session(server.url).get("/").error is None
        finally:
            factory.close_all()
    ((_, _, setup),) = recorder.phases
    assert setup is not None and setup[2] > 0  # the handshake


RECONNECTING = """
from loadgen import HttpUser, constant, task

class Reconnecting(HttpUser):
    keep_alive = False  # every request opens a connection: pays connect and TLS
    wait_time = constant(0.02)

    @task
    def index(self):
        self.client.get("/")
"""


def test_loadgen_run_reports_phases_that_match_the_target(tmp_path: object, tls_target: str) -> None:
    """`loadgen run` over https with a connection per request: connect and TLS are counted once per connection
    the target accepted, time to first byte and body once per request it served."""
    from pathlib import Path

    from conftest import run_loadgen
    from servers import reset_target, target_stats

    assert isinstance(tmp_path, Path)
    reset_target(tls_target)
    (tmp_path / "r.py").write_text(RECONNECTING)
    result = run_loadgen(["run", "-f", "r.py", "-H", tls_target, "--insecure", "-u", "3", "-r", "10", "-t", "2s",
                          "-q", "--json", "r.json", "--html", "r.html"], tmp_path)
    report = result.report
    assert result.code == 0 and report is not None, result.stderr
    served = target_stats(tls_target)
    (endpoint,) = report["endpoints"]
    phases = endpoint["phases_ms"]
    assert set(phases) == {"connect", "tls", "ttfb", "body"}  # an IP literal: no DNS
    assert phases["ttfb"]["count"] == phases["body"]["count"] == endpoint["requests"] == served["requests"]
    assert phases["connect"]["count"] == phases["tls"]["count"] == served["connections"] == endpoint["requests"]
    assert "Where the time went" in result.stdout and "Where the time went" in (tmp_path / "r.html").read_text()
