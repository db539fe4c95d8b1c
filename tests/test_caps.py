"""The endpoint and error caps: overflow routed at record time, caps that say so (with examples and live
counts), and a summary that lists the busiest endpoints, not a thousand one-request rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgpack
from servers import REPO, reset_target, target_stats

from loadgen.outputs.summary import MAX_ENDPOINT_ROWS, format_summary
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.errors import MAX_ERRORS_PER_ENDPOINT, OTHER_ERRORS, ErrorTable
from loadgen.stats.recorder import MAX_ENDPOINTS, OTHER_ENDPOINTS, Recorder
from loadgen.stats.wire import decode_delta, encode_delta


def test_past_the_cap_new_names_go_to_the_other_row_at_record_time() -> None:
    recorder = Recorder()
    for i in range(MAX_ENDPOINTS):
        recorder.record("GET", f"/item/{i}", 1000, 10)
    first = recorder.flush()
    assert len(first.entries) == MAX_ENDPOINTS and not first.overflowed
    for i in range(MAX_ENDPOINTS, 3 * MAX_ENDPOINTS):  # later seconds: every name new
        recorder.record("GET", f"/item/{i}", 1000, 10, error=f"HTTP 500 on item {i}")
    recorder.record("GET", "/item/7", 1000, 10)  # a known name keeps its row
    second = recorder.flush()
    assert set(second.entries) == {("GET", OTHER_ENDPOINTS), ("GET", "/item/7")}  # no row per new name
    other = second.entries[("GET", OTHER_ENDPOINTS)]
    assert other.requests == other.failures == 2 * MAX_ENDPOINTS
    assert {(m, n) for m, n, _ in second.errors.counts} == {("GET", OTHER_ENDPOINTS)}  # errors follow the row
    assert second.overflowed == [("GET", "/item/1000"), ("GET", "/item/1001"), ("GET", "/item/1002")]


def test_other_errors_keep_examples_and_travel_with_them() -> None:
    table = ErrorTable()
    for i in range(MAX_ERRORS_PER_ENDPOINT + 5):
        table.add("GET", "/", f"bad answer {chr(65 + i % 26)}{chr(65 + i // 26)}")
    rows = {row["error"]: row for row in table.rows()}
    assert rows[OTHER_ERRORS]["count"] == 5 and rows[OTHER_ERRORS]["samples"] == ["bad answer YB", "bad answer ZB",
                                                                                   "bad answer AC"]
    recorder = Recorder()
    recorder.record("GET", "/", 10, 0)
    delta = recorder.flush()
    delta.errors = table
    delta.overflowed = [("GET", "/x/1")]
    back = decode_delta(msgpack.unpackb(msgpack.packb(encode_delta(delta)), raw=False, strict_map_key=False))
    assert back.errors.samples == table.samples and back.overflowed == [("GET", "/x/1")]
    assert back.errors.capped() == [("GET", "/", 5)]


def test_a_long_endpoint_name_with_capped_errors_still_travels() -> None:
    recorder = Recorder()
    name = "/search?q=" + "x" * 1300
    for i in range(MAX_ERRORS_PER_ENDPOINT + 3):
        recorder.record("GET", name, 1000, 10, error="bad answer " + chr(71 + i % 20) + chr(71 + i // 20) + "y" * 700)
    back = decode_delta(msgpack.unpackb(msgpack.packb(encode_delta(recorder.flush())), raw=False,
                                        strict_map_key=False))
    assert back.entries[("GET", name)].failures == MAX_ERRORS_PER_ENDPOINT + 3  # the delta is not dropped
    assert len(back.errors.samples[("GET", name)]) == 3


def test_a_warning_warned_again_keeps_its_place_with_the_new_count() -> None:
    aggregate = Aggregate()
    assert aggregate.warn("pacing", "3 missed so far", key="pacing")
    assert not aggregate.warn("pacing", "348 missed so far", key="pacing")
    assert [w["message"] for w in aggregate.warnings] == ["348 missed so far"]
    assert aggregate.report()["warnings"][0]["message"] == "348 missed so far"


def test_the_summary_lists_the_busiest_endpoints_and_sums_up_the_rest() -> None:
    aggregate = Aggregate()
    recorder = Recorder()
    for i in range(200):
        for _ in range(1 + (i % 7 == 0) * 10):
            recorder.record("GET", f"/page/{i:03d}", 1000, 10)
    aggregate.add_delta("local", recorder.flush())
    text = format_summary(aggregate.report())
    endpoint_lines = [line for line in text.splitlines() if line.startswith("GET     /page/")]
    assert len(endpoint_lines) == MAX_ENDPOINT_ROWS
    assert sum(line.split()[2] == "11" for line in endpoint_lines) == 29  # every busy one (i % 7 == 0) is listed
    assert f"… {200 - MAX_ENDPOINT_ROWS:,} more endpoints" in text


UNIQUE = '''
import itertools
from loadgen import HttpUser, constant_throughput, task

N = itertools.count()


class Unique(HttpUser):
    wait_time = constant_throughput(50)

    @task
    def item(self):
        n = next(N)
        with self.client.get(f"/status/200?id={n}", catch_response=True) as response:
            if n % 4 == 0:  # a distinct message (letters: not normalised away) for a quarter of them
                response.failure("no stock for " + "".join(chr(65 + int(d)) for d in str(n)))
'''


def test_unique_urls_hit_the_caps_with_advice_and_the_target_agrees(tmp_path: Path, target: str) -> None:
    script = tmp_path / "unique.py"
    script.write_text(UNIQUE)
    out = tmp_path / "r.json"
    reset_target(target)
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "-f", str(script), "-H", target, "-u", "20",
                           "-r", "20", "-t", "4s", "--json", str(out), "-q"],
                          capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(out.read_text())
    assert report["totals"]["requests"] == target_stats(target)["requests"] > 2 * MAX_ENDPOINTS
    assert len(report["endpoints"]) == MAX_ENDPOINTS + 1
    endpoint = [w["message"] for w in report["warnings"] if w["kind"] == "endpoints"]
    assert len(endpoint) == 1 and "group URLs with name=" in endpoint[0]
    assert endpoint[0].count("GET /status/200?id=") == 3  # three examples
    other = next(e for e in report["endpoints"] if e["name"] == OTHER_ENDPOINTS)
    assert f"{other['requests']:,} requests went to" in endpoint[0]  # the final count, not the first one
    # one error row per named endpoint that failed, then the other-endpoints row's own 50 and its examples
    rows = [e for e in report["errors"] if e["name"] == OTHER_ENDPOINTS]
    assert len(rows) == MAX_ERRORS_PER_ENDPOINT + 1
    capped = next(e for e in rows if e["error"] == OTHER_ERRORS)
    assert len(capped["samples"]) == 3 and all(s.startswith("no stock for ") for s in capped["samples"])
    errors = [w["message"] for w in report["warnings"] if w["kind"] == "errors"]
    assert errors and f"{capped['count']:,} errors are counted as 'other errors'" in errors[0]
    assert len(proc.stdout.splitlines()) < 150  # not a thousand one-request rows
    assert "loadgen: warning: [endpoints] more than 1000 endpoint names" in proc.stderr
