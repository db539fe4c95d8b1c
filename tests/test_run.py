"""`loadgen run` end to end against the built-in target and nginx: counts, reports, exit codes, config."""

from __future__ import annotations

import csv
import json
import os
import re
import textwrap

import pytest
from conftest import run_loadgen
from servers import nginx_binary, start_nginx, stop_process, target_stats

BASIC = """
from loadgen import HttpUser, task, constant

class Web(HttpUser):
    wait_time = constant(0.01)

    @task(3)
    def index(self):
        self.client.get("/")

    @task(1)
    def missing(self):
        self.client.get("/status/404", name="/status/[code]")
"""


def write(tmp_path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_reported_requests_equal_what_the_target_served(tmp_path, fresh_target) -> None:
    script = write(tmp_path, "s.py", BASIC)
    result = run_loadgen(["run", "-f", script, "-H", fresh_target, "-u", "10", "-r", "100", "-t", "3s",
                          "--json", "r.json", "--csv", "out", "-q"], tmp_path)
    assert result.code == 1, result.stderr  # the 404s are failures
    report = result.report
    served = target_stats(fresh_target)
    assert report["totals"]["requests"] == served["requests"] > 100
    by_name = {e["name"]: e for e in report["endpoints"]}
    assert by_name["/status/[code]"]["failures"] == by_name["/status/[code]"]["requests"] > 0
    assert by_name["/"]["failures"] == 0
    assert report["connections"]["opened"] == served["connections"] == 10
    assert report["errors"][0]["error"].startswith("HTTPError: 404")
    assert report["schema"] == "loadgen.report/1"
    for key in ("started_at", "duration_s", "users", "totals", "endpoints", "errors", "connections", "workers",
                "warnings", "timeline"):
        assert key in report
    assert report["users"] == {"target": 10, "peak": 10}
    assert report["workers"][0]["state"] == "done"
    assert sum(point["requests"] for point in report["timeline"]) == report["totals"]["requests"]
    with open(tmp_path / "out_stats.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1]["name"] == "Aggregated" and int(rows[-1]["requests"]) == served["requests"]
    assert (tmp_path / "out_errors.csv").exists() and (tmp_path / "out_timeline.csv").exists()
    assert "Aggregated" in result.stdout


def test_keep_alive_false_opens_a_connection_per_request(tmp_path, fresh_target) -> None:
    script = write(tmp_path, "s.py", """
        from loadgen import HttpUser, task, constant

        class Closer(HttpUser):
            keep_alive = False
            wait_time = constant(0.02)

            @task
            def index(self):
                self.client.get("/")
    """)
    result = run_loadgen(["run", "-f", script, "-H", fresh_target, "-u", "5", "-r", "50", "-t", "2s",
                          "--json", "r.json", "-q"], tmp_path)
    assert result.code == 0, result.stderr
    served = target_stats(fresh_target)
    conn = result.report["connections"]
    assert conn["opened"] == served["connections"] == served["requests"] == result.report["totals"]["requests"]
    assert conn["requests_per_connection"] == 1.0
    assert any(w["kind"] == "connections" for w in result.report["warnings"]), result.report["warnings"]


def test_exceptions_in_on_start_and_tasks_are_errors_not_crashes(tmp_path, fresh_target) -> None:
    script = write(tmp_path, "s.py", """
        from loadgen import HttpUser, task, constant

        class Flaky(HttpUser):
            wait_time = constant(0.05)

            def on_start(self):
                raise RuntimeError("login failed for user 17")

            @task
            def boom(self):
                self.client.get("/")
                raise KeyError("missing field")
    """)
    result = run_loadgen(["run", "-f", script, "-H", fresh_target, "-u", "3", "-r", "10", "-t", "2s",
                          "--json", "r.json", "-q"], tmp_path)
    assert result.code == 1
    errors = {(e["method"], e["name"], e["error"]) for e in result.report["errors"]}
    assert ("EXCEPTION", "Flaky.on_start", "RuntimeError: login failed for user <n>") in errors
    assert ("EXCEPTION", "Flaky.boom", "KeyError: 'missing field'") in errors
    assert result.report["totals"]["requests"] == target_stats(fresh_target)["requests"] > 0
    assert "Traceback" not in result.stderr


def test_exit_code_on_error_zero_and_success(tmp_path, target) -> None:
    script = write(tmp_path, "s.py", BASIC)
    result = run_loadgen(["run", "-f", script, "-H", target, "-u", "2", "-t", "1s", "-q",
                          "--exit-code-on-error", "0"], tmp_path)
    assert result.code == 0
    ok = write(tmp_path, "ok.py", BASIC.replace('"/status/404"', '"/status/200"'))
    assert run_loadgen(["run", "-f", ok, "-H", target, "-u", "2", "-t", "1s", "-q"], tmp_path).code == 0


def test_options_from_environment_and_config_files(tmp_path, fresh_target) -> None:
    script = write(tmp_path, "s.py", BASIC)
    (tmp_path / "loadgen.toml").write_text(f'file = "{script}"\nusers = 4\nspawn-rate = 100\nrun-time = "1s"\n'
                                           'json = "cfg.json"\nquiet = true\n')
    result = run_loadgen(["run", "-H", fresh_target], tmp_path, env={"LOADGEN_USERS": "3"})
    assert result.code == 1, result.stderr
    report = json.loads((tmp_path / "cfg.json").read_text())
    assert report["users"]["target"] == 3  # the environment beats the file
    result = run_loadgen(["run", "-H", fresh_target, "-u", "2", "--json", "cli.json"], tmp_path,
                         env={"LOADGEN_USERS": "3"})
    assert json.loads((tmp_path / "cli.json").read_text())["users"]["target"] == 2  # the command line beats both


def test_user_class_selection_and_unknown_class(tmp_path, target) -> None:
    script = write(tmp_path, "s.py", BASIC + """
class Other(HttpUser):
    @task
    def other(self):
        self.client.get("/status/201", name="other")
""")
    result = run_loadgen(["run", "-f", script, "-H", target, "-u", "2", "-t", "1s", "--json", "r.json", "-q",
                          "Other"], tmp_path)
    assert {e["name"] for e in result.report["endpoints"]} == {"other"}
    bad = run_loadgen(["run", "-f", script, "-H", target, "Nope"], tmp_path)
    assert bad.code == 3 and "user class 'Nope' is not in" in bad.stderr and "Web" in bad.stderr


@pytest.mark.parametrize("args,code,message", [
    (["-u", "abc"], 2, "is not a valid integer"),
    (["-t", "5x"], 2, "not a duration"),
    (["-H", "ftp://x"], 2, "is not an http(s) URL"),
    (["--nope"], 2, "No such option"),
])
def test_bad_options_are_one_line_errors(tmp_path, target, args, code, message) -> None:
    script = write(tmp_path, "s.py", BASIC)
    base = ["run", "-f", script, "-H", target, "-t", "1s"]
    result = run_loadgen(base + args, tmp_path)
    assert result.code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadgen: error:") and message in lines[0], result.stderr


@pytest.mark.parametrize("source,message", [
    ("def broken(:\n", "syntax error in"),
    ("import no_such_module_xyz\n", "cannot import no_such_module_xyz"),
    ("x = 1\n", "defines no user class"),
])
def test_bad_scripts_exit_3(tmp_path, target, source, message) -> None:
    script = write(tmp_path, "bad.py", source)
    result = run_loadgen(["run", "-f", script, "-H", target], tmp_path)
    assert result.code == 3 and message in result.stderr and "Traceback" not in result.stderr
    missing = run_loadgen(["run", "-f", str(tmp_path / "nope.py"), "-H", target], tmp_path)
    assert missing.code == 3 and "not found" in missing.stderr


def test_refused_target_is_data(tmp_path) -> None:
    script = write(tmp_path, "s.py", BASIC)
    result = run_loadgen(["run", "-f", script, "-H", "http://127.0.0.1:9", "-u", "2", "-t", "1s", "--json",
                          "r.json", "-q"], tmp_path)
    assert result.code == 1
    report = result.report
    assert report["totals"]["failures"] == report["totals"]["requests"] > 0
    assert any(re.search(r"refused", e["error"], re.I) for e in report["errors"])


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (apt-get install nginx)")
def test_counts_match_the_nginx_access_log(tmp_path) -> None:
    proc, http_url, https_url, access_log = start_nginx(tmp_path / "nginx")
    try:
        script = write(tmp_path, "s.py", BASIC.replace('"/status/404", name="/status/[code]"', '"/other"'))
        result = run_loadgen(["run", "-f", script, "-H", https_url, "--insecure", "-u", "8", "-r", "100",
                              "-t", "3s", "--json", "r.json", "-q"], tmp_path)
        assert result.code == 0, result.stderr
    finally:
        stop_process(proc)
    with open(access_log) as handle:
        lines = [line for line in handle if line.strip()]
    assert result.report["totals"]["requests"] == len(lines) > 100
    assert result.report["connections"]["opened"] == len({line.split()[4] for line in lines})


def test_json_report_is_written_on_sigterm(tmp_path, target) -> None:
    import signal
    import subprocess
    import sys
    import time

    script = write(tmp_path, "s.py", BASIC)
    proc = subprocess.Popen([sys.executable, "-m", "loadgen", "run", "-f", script, "-H", target, "-u", "4",
                             "-t", "60s", "--json", "r.json", "-q"], cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["totals"]["requests"] > 0 and report["duration_s"] < 10
    assert "Traceback" not in err
    assert os.path.exists(tmp_path / "r.json")
