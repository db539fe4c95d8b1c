"""Locust's configuration files, read by ``run`` and ``master``: ``--config FILE`` after the subcommand, or
``./locust.conf`` and ``[tool.locust]`` in ``./pyproject.toml`` when present (Locust's own defaults).

``locust.conf`` is ``key = value`` lines (``#`` comments, ``[section]`` lines ignored); a ``.toml`` file has a
``[tool.locust]`` table. Keys are Locust's long flag names. The command line wins over the file.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from loadgen.model.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Locust's key → loadgen's parameter (None: accepted, nothing to do)
KEYS: dict[str, str | None] = {
    "locustfile": "file", "f": "file", "host": "host", "H": "host", "users": "users", "u": "users",
    "spawn-rate": "spawn_rate", "r": "spawn_rate", "run-time": "run_time", "t": "run_time", "tags": "tags",
    "T": "tags", "exclude-tags": "exclude_tags", "E": "exclude_tags", "stop-timeout": "stop_timeout",
    "s": "stop_timeout", "iterations": "iterations", "i": "iterations", "reset-stats": "reset_stats",
    "csv": "csv_prefix", "html": "html_path", "json-file": "json_path", "loglevel": "log_level",
    "L": "log_level", "logfile": "logfile", "only-summary": "quiet", "exit-code-on-error": "exit_code_on_error",
    "expect-workers": "expect_workers", "processes": "processes", "headless": None, "autostart": None,
    "autoquit": None, "print-stats": None, "skip-log-setup": None, "master": None,
    "csv-full-history": "csv_full_history",
}
TRUE = {"true", "yes", "on", "1"}


def locust_config(path: str | None, cwd: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """The file to read (``path``, or Locust's defaults in ``cwd``) and its keys, Locust-named."""
    cwd = cwd or os.getcwd()
    if path is not None:
        if not os.path.isfile(path):
            raise UsageError(f"--config {path!r} not found: give a locust.conf or a .toml with [tool.locust]")
        return path, _read(path)
    for conf in (os.path.join(cwd, "locust.conf"), os.path.expanduser("~/.locust.conf")):
        if os.path.isfile(conf):
            return conf, _read(conf)
    pyproject = os.path.join(cwd, "pyproject.toml")
    if os.path.isfile(pyproject):
        found = _read(pyproject)
        if found:
            return pyproject, found
    return None, {}


def _read(path: str) -> dict[str, Any]:
    if path.endswith(".toml"):
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
        section = data.get("tool", {}).get("locust")
        if section is None:
            return {} if path.endswith("pyproject.toml") else data.get("locust", data)
        return dict(section)
    values: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} cannot be read: {exc}; save it as UTF-8 text") from None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in "#;[":
            continue
        key, sep, value = (line.partition("=") if "=" in line else line.partition(":"))
        if not sep:
            raise UsageError(f"{path}, line {number}: expected `key = value`, got {line[:60]!r}")
        values[key.strip()] = value.strip().strip("\"'")
    return values


def apply_locust_config(ctx: click.Context, params: dict[str, Any], path: str | None) -> None:
    """Fill ``params`` that the command line left at their defaults from the Locust config file."""
    file, values = locust_config(path)
    if file is None:
        return
    options = {p.name: p for p in ctx.command.params if p.name}
    for key, value in values.items():
        name = KEYS.get(key.lstrip("-"), "")
        if name is None:
            continue
        if not name or name not in options:
            from loadgen.script.options import LOCUST_FLAGS

            instead = LOCUST_FLAGS.get("--" + key.lstrip("-"))
            hint = f"instead: {instead}" if instead else "see `loadgen run --help`"
            raise UsageError(f"{file}: {key!r} is not an option loadgen takes ({hint})")
        if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT,
                                                  click.core.ParameterSource.DEFAULT_MAP):
            continue  # given on the command line (or in the environment): it wins
        params[name] = _convert(ctx, options[name], value, file, key)


def _convert(ctx: click.Context, option: click.Parameter, value: Any, file: str, key: str) -> Any:
    if isinstance(option, click.Option) and option.is_flag:
        return value if isinstance(value, bool) else str(value).lower() in TRUE
    if option.multiple:
        if isinstance(value, str):
            value = [part.strip() for part in value.strip("[]").replace(",", " ").split() if part.strip()]
        value = list(value) if isinstance(value, (list, tuple)) else [value]
    elif isinstance(value, (list, tuple, dict)):
        raise UsageError(f"{file}: {key} = {value!r}: give one value")
    try:
        return option.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        raise UsageError(f"{file}: {key} = {value!r}: {exc.message}") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{file}: {key} = {value!r}: {exc}") from None
