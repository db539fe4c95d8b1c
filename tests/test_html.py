"""File reports (HTML, JUnit) and the dashboard, the pages rendered in headless Chromium.

Chromium comes from the Debian package ``chromium`` (``apt-get install -y chromium``); the browser tests skip
without it. Charts set ``data-drawn="N"`` (N plotted points) on their canvas once they drew something;
screenshots are decoded with zlib (no Pillow needed) and must not be one flat colour.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import sample_report
from servers import free_port, start_target, stop_process, wait_accepting
from test_live import loadgen_cmd, popen, write_script

from loadgen.outputs.html_report import render_html, write_html
from loadgen.outputs.junit import render_junit, write_junit

HOSTILE = ('</script><script>document.body.setAttribute("data-pwned","1")</script>'
           '<img src=x onerror=alert(1)>/*@data@*/<!--@body@-->')


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        pytest.skip("headless browser tests need Chromium: apt-get install -y chromium")
    return path


def browser_cmd(binary: str, profile: str, *args: str) -> list[str]:
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            "--mute-audio", f"--user-data-dir={profile}", "--window-size=1200,900", *args]


def drawn_counts(dom: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'<canvas id="([\w-]+)"[^>]*data-drawn="(\d+)"', dom)}


# ---- PNG check without Pillow --------------------------------------------------------------------------------
def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG into rows of raw pixel bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def assert_not_uniform(path: Path) -> None:
    width, bpp, rows = png_pixels(path)
    colours: Counter[bytes] = Counter()
    for row in rows[::3]:
        for x in range(0, width * bpp, bpp * 3):
            colours[row[x:x + 3]] += 1
    total = sum(colours.values())
    assert len(colours) >= 20, f"screenshot has only {len(colours)} colours"
    assert colours.most_common(1)[0][1] < 0.95 * total, "screenshot is nearly one flat colour"
    # the chart lines' colours are there (requests/s blue #2563eb, users green #059669)
    near = {c for c in colours if abs(c[0] - 0x25) < 40 and abs(c[1] - 0x63) < 40 and c[2] > 0xb0}
    assert near, "no chart-blue pixels in the screenshot"


# ---- HTML report -----------------------------------------------------------------------------------------
def test_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    report = sample_report()
    report["endpoints"][1]["name"] = HOSTILE
    report["errors"][0]["error"] = HOSTILE
    report["options"]["host"] = HOSTILE
    report["stop_reason"] = "run time reached"
    path = tmp_path / "sub" / "report.html"
    write_html(report, str(path))
    text = path.read_text(encoding="utf-8")
    assert text == render_html(report)
    assert "<script>document.body" not in text and "<img src=x" not in text
    assert "&lt;/script&gt;&lt;script&gt;document.body.setAttribute(" in text
    assert text.count("<script") == 3  # the timeline JSON, charts.js, the drawing code
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "external resource referenced"
    assert "<link" not in text and "@import" not in text
    for needle in ("p99&lt;300ms", "error_rate&lt;0.5%", "FAIL", "/produits/café-crème/日本語", "w-3c4d",
                   "ReadTimeout: timed out after 60.0s", "CPU above 90%", "spawn_rate", "run time reached",
                   'id="chart-throughput"', 'id="chart-users"', 'id="chart-latency"'):
        assert needle in text, needle

    class Check(HTMLParser):
        tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.tags.append(tag)

    checker = Check()
    checker.feed(text)
    assert checker.tags.count("canvas") == 3 and checker.tags.count("table") >= 6


def test_html_report_renders_charts_in_chromium(tmp_path: Path) -> None:
    binary = chromium()
    report = sample_report()
    report["endpoints"][0]["name"] = HOSTILE
    page = tmp_path / "report.html"
    write_html(report, str(page))
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as p1, tempfile.TemporaryDirectory() as p2:
        dump = subprocess.Popen(browser_cmd(binary, p1, "--virtual-time-budget=2000", "--dump-dom", page.as_uri()),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        subprocess.run(browser_cmd(binary, p2, "--virtual-time-budget=2000", f"--screenshot={shot}", page.as_uri()),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True)
        dom = dump.communicate(timeout=60)[0].decode()
    drawn = drawn_counts(dom)
    assert drawn == {"chart-throughput": 120, "chart-users": 60, "chart-latency": 180}, drawn
    assert "<body data-pwned" not in dom and "<img src" not in dom  # the hostile name stayed text
    assert "&lt;/script&gt;&lt;script&gt;document.body" in dom
    assert_not_uniform(shot)


def test_html_report_empty_timeline(tmp_path: Path) -> None:
    report = sample_report()
    report["timeline"] = []
    report["endpoints"] = []
    text = render_html(report)
    assert "no requests" in text and '"timeline-data">[]<' in text


# ---- dashboard -------------------------------------------------------------------------------------------
def test_dashboard_draws_live_charts_in_chromium(tmp_path: Path) -> None:
    binary = chromium()
    proc_target, url = start_target()
    web_port = free_port()
    proc = popen(loadgen_cmd(write_script(tmp_path), url, "-u", "2", "-r", "50", "-t", "30s",
                             "--web", f"127.0.0.1:{web_port}"))
    shot = tmp_path / "dashboard.png"
    try:
        wait_accepting("127.0.0.1", web_port, proc=proc)
        time.sleep(3.5)  # some history first
        page = f"http://127.0.0.1:{web_port}/"
        # the page arrives with the history so far inlined and draws while it loads, so Chromium can
        # capture it at its load event, with the event stream (live updates) still open
        with tempfile.TemporaryDirectory() as p1, tempfile.TemporaryDirectory() as p2:
            dom = subprocess.run(browser_cmd(binary, p1, "--timeout=20000", "--dump-dom", page),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=90, check=True
                                 ).stdout.decode()
            subprocess.run(browser_cmd(binary, p2, "--timeout=20000", f"--screenshot={shot}", page),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90, check=True)
        stop = urllib.request.Request(f"{page}api/stop", data=b"{}", method="POST",
                                      headers={"Content-Type": "application/json"})
        urllib.request.urlopen(stop, timeout=10).read()
        code = proc.wait(30)
    finally:
        stop_process(proc)
        stop_process(proc_target)
    assert code == 0
    drawn = drawn_counts(dom)
    assert set(drawn) == {"chart-throughput", "chart-users", "chart-latency"}, dom[-2000:]
    assert all(n >= 2 for n in drawn.values()), drawn
    assert drawn["chart-throughput"] == 2 * drawn["chart-users"]
    assert re.search(r'<tbody id="endpoints"><tr><td class="l">GET</td><td class="wrap">/</td>', dom)
    assert_not_uniform(shot)


# ---- JUnit -----------------------------------------------------------------------------------------------
def test_junit_report(tmp_path: Path) -> None:
    report = sample_report()
    report["errors"].append({"method": "EXCEPTION", "name": "Browser.checkout", "error": "KeyError: 'x'\x00\x1b",
                             "count": 3})
    report["endpoints"][1]["name"] = "/api/orders"
    path = tmp_path / "junit.xml"
    write_junit(report, str(path))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"loadgen.model.thresholds", "loadgen.endpoints", "loadgen.run"}
    thresholds = suites["loadgen.model.thresholds"].findall("testcase")
    assert [c.get("name") for c in thresholds] == ["p99<300ms", "error_rate<0.5%"]
    assert thresholds[0].find("failure") is None
    failure = thresholds[1].find("failure")
    assert failure is not None and "observed 0.525" in failure.get("message", "")
    endpoints = suites["loadgen.endpoints"].findall("testcase")
    assert [c.get("name") for c in endpoints] == ["GET /", "POST /api/orders"]  # only those with failures
    orders = endpoints[1].find("failure")
    assert orders is not None and "240 of 12000" in orders.get("message", "")
    assert (orders.text or "").splitlines() == ["200 x HTTP 503 Service Unavailable",
                                                "40 x ReadTimeout: timed out after 60.0s"]
    run = suites["loadgen.run"].findall("testcase")
    assert [c.get("name") for c in run] == ["load test", "script exceptions"]
    assert "\ufffd" in (run[1].find("failure").text or "")  # control characters replaced, XML stays valid
    assert root.get("tests") == "6" and root.get("failures") == "4"
    for suite in suites.values():
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))


def test_junit_all_passing() -> None:
    report = sample_report()
    report["thresholds"] = [{"expression": "p99<300ms", "observed": 29.4, "pass": True}]
    for row in report["endpoints"]:
        row["failures"] = 0
    report["errors"] = []
    root = ET.fromstring(render_junit(report))
    assert root.get("failures") == "0" and root.get("tests") == "2"
