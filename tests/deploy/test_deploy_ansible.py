"""deploy/ansible: lint, syntax, and the roles applied for real with -c local into a scratch prefix."""

from __future__ import annotations

import getpass
import grp
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
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


WORKERS = ("worker-01", "worker-02")


class Fleet:
    """Three hosts on this machine (-c local): a master and two workers, each under its own prefix."""

    def __init__(self, root: Path):
        self.root = root
        self.keys = root / "controller-keys"
        self.prefix = {"master": root / "master", **{w: root / w for w in WORKERS}}
        # One source copy per host: pip builds in the source tree, and the hosts install in parallel.
        self.source = {host: _package_copy(root / f"src-{host}") for host in self.prefix}
        self.inventory = root / "inventory.ini"
        python = deploy_venv() / "bin" / "python"
        lines = [
            "[loadgen_master]",
            f"master loadgen_prefix={self.prefix['master']} loadgen_source_path={self.source['master']}",
            "",
            "[loadgen_worker]",
            *(f"{w} loadgen_prefix={self.prefix[w]} loadgen_source_path={self.source[w]}" for w in WORKERS),
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
            "loadgen_curve_local_dir": str(self.keys),
            "master_host": "127.0.0.1",
        }

    def playbook(self, playbook: Path | str, *args: str, **overrides) -> str:
        return self.play(playbook, *args, **overrides).stdout

    def play(
        self, playbook: Path | str, *args: str, check: bool = True, inventory: Path | None = None, **overrides
    ) -> subprocess.CompletedProcess[str]:
        """Run a playbook (``check=False``: let it fail) with the fleet's extra vars and ``overrides``."""
        ansible_playbook = require_tool("ansible-playbook")
        vars_file = self.root / "extra-vars.json"
        vars_file.write_text(json.dumps({**self.extra_vars, **overrides}))
        env = tool_env(
            ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
            ANSIBLE_ROLES_PATH=str(ANSIBLE_DIR / "roles"),
            ANSIBLE_LOCAL_TEMP=str(self.root / ".ansible-tmp"),
        )
        return run(
            [
                ansible_playbook,
                "-i",
                inventory or self.inventory,
                "-e",
                f"@{vars_file}",
                *args,
                str(playbook),
            ],
            cwd=ANSIBLE_DIR,
            env=env,
            timeout=170,
            check=check,
        )

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
    for worker in WORKERS:
        unit = _unit(fleet, worker, "loadgen-worker.service")
        venv = fleet.path(worker, "/opt/loadgen/venv")
        keys = fleet.path(worker, "/etc/loadgen/keys")
        assert unit["ExecStart"] == [
            f"{venv}/bin/loadgen worker --master 127.0.0.1 --processes auto --stay"
            f" --curve-secret-key {keys}/worker.key_secret --curve-master-key {keys}/master.key"
        ]
        assert unit["UnsetEnvironment"] == ["LOADGEN_INSECURE_NO_AUTH"]
        assert unit["Restart"] == ["always"]
        assert unit["LimitNOFILE"] == ["1048576"]
        assert unit["User"] == [getpass.getuser()]
        assert unit["WantedBy"] == ["multi-user.target"]


def test_master_unit(fleet):
    unit = _unit(fleet, "master", "loadgen-master.service")
    exec_start = unit["ExecStart"][0]
    keys = fleet.path("master", "/etc/loadgen/keys")
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
        f" --curve-secret-key {keys}/master.key_secret --curve-allow {keys}/allowed ",
    ):
        assert flag in exec_start
    assert unit["UnsetEnvironment"] == ["LOADGEN_INSECURE_NO_AUTH"]
    assert unit["Restart"] == ["on-abnormal"]
    assert unit["RestartPreventExitStatus"] == ["1 2 3 4"]
    assert unit["LimitNOFILE"] == ["1048576"]
    assert unit["EnvironmentFile"] == [str(fleet.path("master", "/etc/loadgen/master.env"))]


def test_no_unit_or_env_file_turns_curve_off(fleet):
    for path in fleet.root.glob("*/etc/**/*"):
        if path.is_file() and not path.name.endswith(("key", "key_secret")):
            text = path.read_text()
            assert "--insecure-no-auth" not in text and "LOADGEN_INSECURE_NO_AUTH=" not in text, path
    for template in ANSIBLE_DIR.rglob("*.j2"):
        assert "--insecure-no-auth" not in template.read_text(), template


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


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


LOAD_KEYS = """
import json, sys
from zmq.utils import z85
from loadgen.fleet.keyring import master_keys, worker_keys
from loadgen.fleet.security import CurveKeys

master_dir, *worker_dirs = sys.argv[1:]
master = CurveKeys.for_master(master_dir + "/master.key_secret", master_dir + "/allowed")
assert master_keys(master_dir).allowed == master.allowed  # `loadgen master --keys DIR` reads the same
workers = [CurveKeys.for_worker(d + "/worker.key_secret", d + "/master.key") for d in worker_dirs]
assert [worker_keys(d).public for d in worker_dirs] == [w.public for w in workers]
print(json.dumps({
    "allowed": sorted(z85.encode(k).decode() for k in master.allowed),
    "workers": [w.public.decode() for w in workers],
    "trusted_master": sorted({w.server_public.decode() for w in workers}),
    "master": master.public.decode(),
}))
"""


def test_curve_keys_per_worker_and_the_allow_list(fleet):
    """Every host made its own key pair; only public keys travelled; the master allows exactly its workers."""
    master_keys = fleet.path("master", "/etc/loadgen/keys")
    secret = master_keys / "master.key_secret"
    assert _mode(secret) == 0o600 and secret.stat().st_uid == os.getuid()
    assert _mode(master_keys) == 0o750 and _mode(master_keys / "allowed") == 0o750
    for worker in WORKERS:
        keys = fleet.path(worker, "/etc/loadgen/keys")
        assert (
            _mode(keys / "worker.key_secret") == 0o600
            and (keys / "worker.key_secret").stat().st_uid == os.getuid()
        )
        assert (keys / "master.key").read_bytes() == (master_keys / "master.key").read_bytes()
        assert not list(keys.glob("master.key_secret")), f"{worker} holds the master's secret"
    # The controller holds public keys only: no secret ever left its host.
    assert sorted(p.relative_to(fleet.keys).as_posix() for p in fleet.keys.rglob("*") if p.is_file()) == [
        "master.key",
        *(f"workers/{w}.key" for w in WORKERS),
    ]
    assert sorted(p.name for p in (master_keys / "allowed").iterdir()) == [f"{w}.key" for w in WORKERS]
    assert not (master_keys / "workers").exists()

    python = fleet.path("master", "/opt/loadgen/venv/bin/python")
    worker_dirs = [str(fleet.path(w, "/etc/loadgen/keys")) for w in WORKERS]
    loaded = json.loads(run([python, "-c", LOAD_KEYS, str(master_keys), *worker_dirs], cwd=fleet.root).stdout)
    assert len(set(loaded["workers"])) == len(WORKERS), "each worker has a key pair of its own"
    assert loaded["allowed"] == sorted(loaded["workers"])
    assert loaded["trusted_master"] == [loaded["master"]]


AUTHORIZE = """\
- name: Authorize the workers on the master
  hosts: loadgen_master
  gather_facts: false
  tasks:
    - name: Load the shared settings
      ansible.builtin.import_role:
        name: loadgen_common
        tasks_from: noop.yml
    - name: Authorize
      ansible.builtin.import_role:
        name: loadgen_master
        tasks_from: authorize_workers.yml
"""


def test_allow_list_revokes_workers_gone_from_the_inventory(fleet):
    allowed = fleet.path("master", "/etc/loadgen/keys/allowed")
    before = {p.name: p.read_bytes() for p in allowed.iterdir()}
    shutil.copy(allowed / "worker-01.key", allowed / "retired.key")
    shutil.copy(fleet.keys / "workers" / "worker-01.key", fleet.keys / "workers" / "stranger.key")
    playbook = fleet.root / "authorize.yml"
    playbook.write_text(AUTHORIZE)
    try:
        fleet.play(playbook)
        assert {p.name: p.read_bytes() for p in allowed.iterdir()} == before
    finally:
        (fleet.keys / "workers" / "stranger.key").unlink()


def test_allow_list_refuses_a_worker_without_a_key(fleet):
    inventory = fleet.root / "inventory-plus.ini"
    inventory.write_text(
        fleet.inventory.read_text().replace("[loadgen_worker]\n", "[loadgen_worker]\nworker-99\n")
    )
    playbook = fleet.root / "authorize.yml"
    playbook.write_text(AUTHORIZE)
    before = sorted(p.name for p in fleet.path("master", "/etc/loadgen/keys/allowed").iterdir())
    proc = fleet.play(playbook, check=False, inventory=inventory)
    assert proc.returncode != 0
    assert "Check that every worker's public key was collected" in proc.stdout and "worker-99" in proc.stdout
    assert sorted(p.name for p in fleet.path("master", "/etc/loadgen/keys/allowed").iterdir()) == before


REFUSE = """\
- name: Try to set up a loadgen host without CURVE
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: Load the shared settings
      ansible.builtin.import_role:
        name: loadgen_common
        tasks_from: noop.yml
    - name: Set it up
      ansible.builtin.import_role:
        name: {role}
"""


@pytest.mark.parametrize(
    ("role", "overrides", "task"),
    [
        (
            "loadgen_worker",
            {"loadgen_curve": False},
            "Refuse to run the worker without CURVE or without --stay",
        ),
        (
            "loadgen_worker",
            {"loadgen_worker_stay": False},
            "Refuse to run the worker without CURVE or without --stay",
        ),
        (
            "loadgen_worker",
            {"loadgen_worker_extra_args": ["--insecure-no-auth"]},
            "Refuse to run the worker without CURVE or without --stay",
        ),
        ("loadgen_master", {"loadgen_curve": False}, "Refuse to run the master without CURVE"),
        (
            "loadgen_master",
            {"loadgen_test_extra_args": ["--insecure-no-auth"]},
            "Refuse to run the master without CURVE",
        ),
        ("loadgen_common", {"loadgen_curve": False}, "Refuse to set up a fleet without CURVE"),
    ],
)
def test_roles_refuse_to_turn_curve_off(tmp_path, fleet, role, overrides, task):
    hosts = "loadgen_worker" if role == "loadgen_worker" else "loadgen_master"
    playbook = tmp_path / "refuse.yml"
    playbook.write_text(REFUSE.format(hosts=hosts, role=role))
    scratch = tmp_path / "prefix"  # anything the role got past its check would land here, not in the fleet
    proc = fleet.play(playbook, check=False, loadgen_prefix=str(scratch), **overrides)
    assert proc.returncode != 0
    tasks = re.findall(r"^TASK \[(.+?)\]", proc.stdout, re.MULTILINE)
    assert tasks and tasks[-1] == f"{role} : {task}" and "FAILED!" in proc.stdout, proc.stdout[-3000:]
    assert not scratch.exists() or not any(scratch.rglob("*key*"))


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
    assert pairs["--curve-secret-key"] == f"{prefix}/etc/loadgen/keys/master.key_secret"
    assert pairs["--curve-allow"] == f"{prefix}/etc/loadgen/keys/allowed"
    assert "--insecure-no-auth" not in argv
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
