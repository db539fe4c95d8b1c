"""deploy/ansible: lint, syntax, and the roles applied for real with -c local into a scratch prefix."""

from __future__ import annotations

import getpass
import grp
import hashlib
import json
import os
import shutil
import stat
import textwrap
from pathlib import Path

import pytest
from deploy_helpers import ANSIBLE_DIR, REPO, deploy_venv, require_tool, run, tool_env

PLAYBOOKS = sorted(p.name for p in ANSIBLE_DIR.glob("*.yml"))


def test_playbooks_present():
    assert {"site.yml", "run-test.yml"} <= set(PLAYBOOKS)
    for role in ("loadgen_common", "loadgen_master", "loadgen_worker"):
        assert (ANSIBLE_DIR / "roles" / role / "tasks" / "main.yml").is_file()
    assert (ANSIBLE_DIR / "inventory" / "example.ini").is_file()


def test_ansible_lint_clean():
    lint = require_tool("ansible-lint")
    proc = run([lint, "--offline", "--nocolor", "-q"], cwd=ANSIBLE_DIR, check=False, timeout=170)
    assert proc.returncode == 0, f"ansible-lint found problems:\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook):
    ansible_playbook = require_tool("ansible-playbook")
    run([ansible_playbook, "--syntax-check", "-i", "inventory/example.ini", playbook], cwd=ANSIBLE_DIR)


def test_example_inventory_groups():
    inventory = require_tool("ansible-inventory")
    proc = run([inventory, "-i", "inventory/example.ini", "--list"], cwd=ANSIBLE_DIR)
    data = json.loads(proc.stdout)
    assert len(data["loadgen_worker"]["hosts"]) == 5
    assert data["loadgen_master"]["hosts"] == ["master"]
    assert data["_meta"]["hostvars"]["worker-01"]["master_host"] == "10.40.1.10"


# --- The roles, applied for real ------------------------------------------------------------


def _current_group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


def _package_copy(dest: Path) -> Path:
    """A copy of the package sources, so that pip's in-tree build leaves the work tree alone."""
    src = dest / "loadgen-src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.py", "setup.cfg", "MANIFEST.in"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("loadgen\n")
    shutil.copytree(REPO / "loadgen", src / "loadgen", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def _pip_args() -> str:
    """Install from ci-setup.sh's wheelhouse: alone (--no-index, fast) while it matches pyproject.toml,
    else as an extra source next to the index."""
    wheelhouse = deploy_venv() / "wheelhouse"
    if not wheelhouse.is_dir():
        return ""
    stamp = wheelhouse / "pyproject.sha256"
    current = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == current:
        return f"--no-index --find-links {wheelhouse}"
    return f"--find-links {wheelhouse}"


class Fleet:
    """Two hosts on this machine (-c local): a master and a worker, each under its own prefix."""

    def __init__(self, root: Path):
        self.root = root
        self.keys = root / "controller-keys"
        self.prefix = {"master": root / "master", "worker-01": root / "worker-01"}
        # One source copy per host: pip builds in the source tree, and the hosts install in parallel.
        self.source = {host: _package_copy(root / f"src-{host}") for host in self.prefix}
        self.inventory = root / "inventory.ini"
        python = deploy_venv() / "bin" / "python"
        lines = [
            "[loadgen_master]",
            f"master loadgen_prefix={self.prefix['master']} loadgen_source_path={self.source['master']}",
            "",
            "[loadgen_worker]",
            f"worker-01 loadgen_prefix={self.prefix['worker-01']} loadgen_source_path={self.source['worker-01']}",
            "",
            "[loadgen:children]",
            "loadgen_master",
            "loadgen_worker",
            "",
            "[loadgen:vars]",
            "ansible_connection=local",
            f"ansible_python_interpreter={python}",
        ]
        self.inventory.write_text("\n".join(lines) + "\n")
        pip_args = _pip_args()
        self.extra_vars = {
            "ansible_become": False,
            "loadgen_manage_packages": False,
            "loadgen_manage_user": False,
            "loadgen_manage_sysctl": False,
            "loadgen_manage_services": False,
            "loadgen_user": getpass.getuser(),
            "loadgen_group": _current_group(),
            "loadgen_install_method": "path",
            "loadgen_pip_extra_args": pip_args,
            "loadgen_python": "python3",
            "loadgen_curve": False,
            "loadgen_curve_local_dir": str(self.keys),
            "master_host": "127.0.0.1",
        }

    def playbook(self, playbook: Path | str, *args: str, **overrides) -> str:
        ansible_playbook = require_tool("ansible-playbook")
        vars_file = self.root / "extra-vars.json"
        vars_file.write_text(json.dumps({**self.extra_vars, **overrides}))
        env = tool_env(
            ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
            ANSIBLE_LOCAL_TEMP=str(self.root / ".ansible-tmp"),
        )
        proc = run(
            [ansible_playbook, "-i", self.inventory, "-e", f"@{vars_file}", *args, str(playbook)],
            cwd=ANSIBLE_DIR,
            env=env,
            timeout=170,
        )
        return proc.stdout

    def path(self, host: str, rel: str) -> Path:
        return self.prefix[host] / rel.lstrip("/")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    require_tool("ansible-playbook")
    if shutil.which("python3") is None:
        pytest.skip("python3 not on PATH: the roles create their venv with it")
    fleet = Fleet(tmp_path_factory.mktemp("fleet"))
    fleet.first_run = fleet.playbook("site.yml")
    return fleet


def test_site_applies_into_prefix(fleet):
    assert "failed=0" in fleet.first_run
    for host in fleet.prefix:
        venv = fleet.path(host, "/opt/loadgen/venv")
        assert (venv / "bin" / "python").exists(), host
        proc = run(
            [venv / "bin" / "python", "-c", "import loadgen, json; print(json.dumps(loadgen.__file__))"],
            cwd=fleet.root,
        )
        module_file = Path(json.loads(proc.stdout))
        assert str(module_file).startswith(str(venv)), f"loadgen imported from {module_file}, not the venv"
        link = fleet.path(host, "/usr/local/bin/loadgen")
        assert link.is_symlink() and os.readlink(link) == str(venv / "bin" / "loadgen")
        for d in ("/etc/loadgen", "/var/lib/loadgen", "/etc/loadgen/keys"):
            assert fleet.path(host, d).is_dir(), (host, d)
    assert stat.S_IMODE(fleet.path("worker-01", "/etc/loadgen/keys").stat().st_mode) == 0o750


def test_nothing_written_outside_prefix(fleet):
    # The roles ran with every loadgen_manage_* off: no unit may appear in the real unit dir
    # unless it was there before (a machine that really runs loadgen).
    for unit in ("loadgen-worker.service", "loadgen-master.service"):
        real = Path("/etc/systemd/system") / unit
        if real.exists():
            assert real.stat().st_mtime < fleet.inventory.stat().st_mtime, f"{real} was written by the test"
    assert not (ANSIBLE_DIR / "results").exists() or not any((ANSIBLE_DIR / "results").iterdir())


def test_sysctl_limits_dns(fleet):
    sysctl = fleet.path("worker-01", "/etc/sysctl.d/60-loadgen.conf").read_text()
    settings = dict(line.split(" = ", 1) for line in sysctl.splitlines() if " = " in line)
    assert settings["net.ipv4.ip_local_port_range"] == "1024 65000"
    assert settings["net.ipv4.tcp_tw_reuse"] == "1"
    assert int(settings["net.core.somaxconn"]) >= 4096
    assert int(settings["fs.file-max"]) >= 1048576
    assert "5557" in settings["net.ipv4.ip_local_reserved_ports"]
    limits = fleet.path("worker-01", "/etc/security/limits.d/90-loadgen.conf").read_text()
    assert f"{getpass.getuser()}  hard  nofile  1048576" in limits
    assert "*  soft  nofile  1048576" in limits
    resolved = fleet.path("worker-01", "/etc/systemd/resolved.conf.d/60-loadgen.conf").read_text()
    assert "[Resolve]" in resolved and "Cache=yes" in resolved


def _unit(fleet, host, name) -> dict[str, list[str]]:
    text = fleet.path(host, f"/etc/systemd/system/{name}").read_text()
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_worker_unit(fleet):
    unit = _unit(fleet, "worker-01", "loadgen-worker.service")
    venv = fleet.path("worker-01", "/opt/loadgen/venv")
    assert unit["ExecStart"] == [f"{venv}/bin/loadgen worker --master 127.0.0.1 --processes auto --stay"]
    assert unit["Restart"] == ["always"]
    assert unit["LimitNOFILE"] == ["1048576"]
    assert unit["User"] == [getpass.getuser()]
    assert unit["WantedBy"] == ["multi-user.target"]


def test_master_unit(fleet):
    unit = _unit(fleet, "master", "loadgen-master.service")
    exec_start = unit["ExecStart"][0]
    assert exec_start.startswith(
        f"{fleet.path('master', '/opt/loadgen/venv')}/bin/loadgen master -f ${{LOADGEN_SCRIPT}}"
    )
    for flag in (
        "-H ${LOADGEN_HOST}",
        "-u ${LOADGEN_USERS}",
        "-r ${LOADGEN_SPAWN_RATE}",
        "-t ${LOADGEN_RUN_TIME}",
        "--expect-workers ${LOADGEN_EXPECT_WORKERS}",
        "--bind 0.0.0.0:5557",
        "--json ",
        "--csv ",
        "--html ",
        "--web 127.0.0.1:8089",
    ):
        assert flag in exec_start
    assert "--curve" not in exec_start
    assert unit["Restart"] == ["on-abnormal"]
    assert unit["RestartPreventExitStatus"] == ["1 2 3 4"]
    assert unit["LimitNOFILE"] == ["1048576"]
    assert unit["EnvironmentFile"] == [str(fleet.path("master", "/etc/loadgen/master.env"))]


def test_units_pass_systemd_analyze_verify(fleet):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    for host, unit in (("worker-01", "loadgen-worker.service"), ("master", "loadgen-master.service")):
        path = fleet.path(host, f"/etc/systemd/system/{unit}")
        proc = run([analyze, "verify", path], cwd=path.parent, check=False, timeout=60)
        problems = [
            line for line in (proc.stdout + proc.stderr).splitlines() if unit in line or "loadgen" in line
        ]
        assert proc.returncode == 0 and not problems, f"{unit}:\n{proc.stdout}\n{proc.stderr}"


def _loadgen_has_keys_command(fleet) -> bool:
    loadgen = fleet.path("master", "/opt/loadgen/venv/bin/loadgen")
    proc = run([loadgen, "keys", "generate", "--help"], check=False, timeout=60)
    return proc.returncode == 0 and "--name" in proc.stdout


def test_curve_keys_generated_and_distributed(fleet):
    if not _loadgen_has_keys_command(fleet):
        pytest.skip("this loadgen has no `loadgen keys generate` yet")
    # loadgen is installed already: re-run everything else (the `loadgen_install` tag is for that).
    fleet.playbook("site.yml", "--skip-tags", "loadgen_install", loadgen_curve=True)
    master_keys = fleet.path("master", "/etc/loadgen/keys")
    worker_keys = fleet.path("worker-01", "/etc/loadgen/keys")
    assert (master_keys / "master.key_secret").is_file()
    assert stat.S_IMODE((master_keys / "master.key_secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((worker_keys / "worker.key_secret").stat().st_mode) == 0o600
    # Public keys went master -> controller -> worker and worker -> controller -> master.
    assert (worker_keys / "master.key").read_bytes() == (master_keys / "master.key").read_bytes()
    assert (master_keys / "workers" / "worker-01.key").read_bytes() == (
        worker_keys / "worker.key"
    ).read_bytes()
    assert (fleet.keys / "master.key").is_file() and (fleet.keys / "workers" / "worker-01.key").is_file()
    worker_exec = _unit(fleet, "worker-01", "loadgen-worker.service")["ExecStart"][0]
    assert (
        f"--curve-secret-key {worker_keys}/worker.key_secret --curve-master-key {worker_keys}/master.key"
        in worker_exec
    )
    master_exec = _unit(fleet, "master", "loadgen-master.service")["ExecStart"][0]
    assert (
        f"--curve-secret-key {master_keys}/master.key_secret --curve-allow {master_keys}/workers/"
        in master_exec
    )


# --- run-test.yml with a stand-in master ----------------------------------------------------

FAKE_LOADGEN = """\
#!/bin/sh
# Stand-in for `loadgen master`: records its arguments, writes the three reports.
printf '%s\\n' "$@" > "{log}"
while [ $# -gt 0 ]; do
  case "$1" in
    --json) echo '{{"schema": "loadgen.report/1"}}' > "$2"; shift ;;
    --csv) echo 'name,requests' > "$2_stats.csv"; shift ;;
    --html) echo '<html></html>' > "$2"; shift ;;
  esac
  shift
done
exit "$(cat "{code}")"
"""


@pytest.fixture()
def fake_master(tmp_path):
    """A master prefix whose venv holds a fake `loadgen` (run-test.yml only runs the binary)."""
    prefix = tmp_path / "master"
    venv_bin = prefix / "opt/loadgen/venv/bin"
    venv_bin.mkdir(parents=True)
    log, code = tmp_path / "argv.txt", tmp_path / "exit-code"
    code.write_text("0")
    script = venv_bin / "loadgen"
    script.write_text(FAKE_LOADGEN.format(log=log, code=code))
    script.chmod(0o755)
    test_script = tmp_path / "shop.py"
    test_script.write_text("from loadgen import HttpUser\n")
    inventory = tmp_path / "inventory.ini"
    python = deploy_venv() / "bin" / "python"
    inventory.write_text(
        textwrap.dedent(f"""\
        [loadgen_master]
        master ansible_connection=local ansible_python_interpreter={python} loadgen_prefix={prefix}
        [loadgen_worker]
        """)
    )
    results = tmp_path / "results"
    extra = {
        "ansible_become": False,
        "loadgen_manage_services": False,
        "loadgen_curve": False,
        "loadgen_user": getpass.getuser(),
        "loadgen_group": _current_group(),
        "loadgen_test_script": str(test_script),
        "loadgen_test_host": "https://target.example",
        "loadgen_test_users": 1200,
        "loadgen_test_spawn_rate": 100,
        "loadgen_test_run_time": "2s",
        "loadgen_test_expect_workers": 5,
        "loadgen_test_poll_seconds": 1,
        "loadgen_test_slack_seconds": 60,
        "loadgen_test_results_local_dir": str(results),
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra))

    def play(check=True):
        ansible_playbook = require_tool("ansible-playbook")
        env = tool_env(
            ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-tmp")
        )
        return run(
            [ansible_playbook, "-i", inventory, "-e", f"@{tmp_path / 'vars.json'}", "run-test.yml"],
            cwd=ANSIBLE_DIR,
            env=env,
            check=check,
            timeout=120,
        )

    return {"play": play, "log": log, "code": code, "results": results, "prefix": prefix}


def _only_run_dir(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_run_test_playbook_fetches_reports(fake_master):
    fake_master["play"]()
    argv = fake_master["log"].read_text().splitlines()
    prefix = fake_master["prefix"]
    assert argv[:2] == ["master", "-f"]
    assert argv[2] == f"{prefix}/var/lib/loadgen/scripts/shop.py"
    pairs = dict(zip(argv[3::2], argv[4::2]))
    assert pairs["-H"] == "https://target.example" and pairs["-u"] == "1200" and pairs["-r"] == "100"
    assert pairs["-t"] == "2s" and pairs["--expect-workers"] == "5" and pairs["--bind"] == "0.0.0.0:5557"
    assert pairs["--web"] == "127.0.0.1:8089"
    run_dir = _only_run_dir(fake_master["results"])
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "exit-code",
        "out_stats.csv",
        "report.html",
        "report.json",
    ]
    assert json.loads((run_dir / "report.json").read_text())["schema"] == "loadgen.report/1"
    assert (run_dir / "exit-code").read_text().strip() == "0"


def test_run_test_playbook_fails_on_threshold_exit_but_keeps_reports(fake_master):
    fake_master["code"].write_text("4")
    proc = fake_master["play"](check=False)
    assert proc.returncode != 0
    assert "thresholds failed" in proc.stdout
    run_dir = _only_run_dir(fake_master["results"])
    assert (run_dir / "exit-code").read_text().strip() == "4"
    assert (run_dir / "report.json").is_file()
