#!/usr/bin/env bash
# Create the deploy tool venv used by tests/deploy:
#   - <repo>/.venv-deploy (or $LOADGEN_DEPLOY_VENV) with deploy/requirements-ci.txt
#   - <venv>/wheelhouse: wheels of loadgen's dependencies and build backend, so the tests that
#     apply the Ansible roles install loadgen into their scratch venvs quickly.
# Idempotent; safe to run on every CI run. Needs python3 with venv and PyPI access.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LOADGEN_DEPLOY_VENV:-$ROOT/.venv-deploy}"
PYTHON="${PYTHON:-python3}"
PIP_FLAGS=(--quiet --disable-pip-version-check)

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# Keep the venv out of git (and of ruff, which honours .gitignore) without touching the root .gitignore.
printf '*\n' > "$VENV/.gitignore"
"$VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" --upgrade pip
"$VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r "$ROOT/deploy/requirements-ci.txt"

# Wheelhouse: wheels of loadgen's dependencies (read from pyproject.toml, so nothing is built in the
# work tree) and of the build backend. The tests install with --no-index from it while
# pyproject.toml still matches the recorded hash, else with it as an extra source beside the index.
WHEELHOUSE="$VENV/wheelhouse"
mkdir -p "$WHEELHOUSE"
rm -f "$WHEELHOUSE/pyproject.sha256"
DEPS="$WHEELHOUSE/requirements.txt"
if ! "$VENV/bin/python" - "$ROOT/pyproject.toml" > "$DEPS" <<'PY'
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: no wheelhouse, the tests use the index
    sys.exit(1)

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
build = project.get("build-system", {}).get("requires", ["setuptools", "wheel"])
print("\n".join(["pip", *build, *project["project"].get("dependencies", [])]))
PY
then
    echo "ci-setup: could not read pyproject.toml's dependencies; the role tests will use the index" >&2
elif "$VENV/bin/python" -m pip wheel "${PIP_FLAGS[@]}" -w "$WHEELHOUSE" -r "$DEPS"; then
    sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1 > "$WHEELHOUSE/pyproject.sha256"
else
    echo "ci-setup: could not fill the wheelhouse; the role tests will use the index" >&2
fi

echo "ci-setup: deploy tools ready in $VENV"
versions="$("$VENV/bin/ansible-playbook" --version)"
echo "${versions%%$'\n'*}"
