"""Options from a file: ``loadgen.toml`` or ``[tool.loadgen]`` in ``pyproject.toml``."""

from __future__ import annotations

import os
import sys
from typing import Any

from loadgen.model.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Option names whose parameter name differs from the flag.
_RENAMES = {"json": "json_path", "csv": "csv_prefix", "html": "html_path", "threshold": "thresholds",
            "no_tls_resume": "no_tls_resume", "classes": "user_classes"}


def load_config(path: str | None = None, cwd: str | None = None) -> dict[str, Any]:
    """Option defaults from ``path``, or from ./loadgen.toml, or from [tool.loadgen] in ./pyproject.toml."""
    cwd = cwd or os.getcwd()
    if path is not None:
        if not os.path.isfile(path):
            raise UsageError(f"config file {path!r} not found: check --config / LOADGEN_CONFIG")
        data = _read(path)
        return _normalise(data.get("tool", {}).get("loadgen", data) if path.endswith("pyproject.toml") else data,
                          path)
    local = os.path.join(cwd, "loadgen.toml")
    if os.path.isfile(local):
        return _normalise(_read(local), local)
    pyproject = os.path.join(cwd, "pyproject.toml")
    if os.path.isfile(pyproject):
        section = _read(pyproject).get("tool", {}).get("loadgen")
        if isinstance(section, dict):
            return _normalise(section, pyproject)
    return {}


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def _normalise(data: dict[str, Any], path: str) -> dict[str, Any]:
    result = {}
    for key, value in data.items():
        if isinstance(value, dict):
            raise UsageError(f"config file {path}: [{key}] tables are not options; put options at the top level")
        name = key.replace("-", "_")
        name = _RENAMES.get(name, name)
        if name == "thresholds" and isinstance(value, str):
            value = [value]
        result[name] = value
    return result
