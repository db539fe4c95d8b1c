"""A locustfile's own command-line options (``events.init_command_line_parser``) and
``environment.parsed_options``.

The words on the command line that loadgen's own options do not take are given, in order, to a parser the
script's listeners add arguments to (Locust's extra keywords ``env_var``, ``include_in_web_ui``,
``is_secret``, ``is_required``, ``is_multiple`` are understood). What it does not take is a user class name,
or, if it starts with ``-``, a one-line usage error naming loadgen's equivalent of a Locust flag.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any, NoReturn

from loadgen.model.errors import UsageError

# Locust flags loadgen does not take as they are, and what to use instead
LOCUST_FLAGS = {
    "--web-host": "--web HOST:PORT", "--web-port": "--web HOST:PORT", "-P": "--web HOST:PORT",
    "--autostart": "loadgen starts at once (no web UI start button)", "--autoquit": "loadgen exits at the end",
    "--web-login": "--web-token", "--web-auth": "--web-token", "--tls-cert": "--web-cert", "--tls-key": "--web-key",
    "--master": "`loadgen master`", "--worker": "`loadgen worker --master HOST`",
    "--master-host": "`loadgen worker --master HOST`", "--master-port": "`loadgen worker --master HOST:PORT`",
    "--master-bind-host": "--bind HOST:PORT", "--master-bind-port": "--bind HOST:PORT",
    "--html-report": "--html PATH", "--json-file": "--json PATH",
    "--print-stats": "live stats print by default (-q for none)", "--class-picker": "name the classes: USERCLASS...",
    "--modern-ui": "--web HOST:PORT", "--legacy-ui": "--web HOST:PORT", "--equal-weights": "set weight on the classes",
    "--enable-rebalancing": "the master rebalances users on every join and loss",
    "--heartbeat-liveness": "--heartbeat-timeout", "--processes": "--processes N (before the script's own options)",
    "--profile": "--html/--json (the profile is the report)", "--skip-log-setup": "--log-level",
    "--request-timeout": "--read-timeout / --connect-timeout", "--locustfile": "-f/--file",
    "--json": "--json PATH (the report as a file)",
    "--config-users": "name the classes and their weights in the script",
}


class LocustArgumentParser(argparse.ArgumentParser):
    """``parser.add_argument`` with Locust's extra keywords."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("prog", "loadgen run -f SCRIPT")
        super().__init__(*args, **kwargs)
        self.secret: set[str] = set()
        self.required_options: list[tuple[str, str]] = []

    def add_argument(self, *args: Any, env_var: str | None = None, include_in_web_ui: bool = True,
                     is_secret: bool = False, is_required: bool = False, is_multiple: bool = False,
                     **kwargs: Any) -> argparse.Action:
        if is_multiple and "nargs" not in kwargs and kwargs.get("action") in (None, "store"):
            kwargs["nargs"] = "*"
        if env_var and env_var in os.environ:
            raw = os.environ[env_var]
            convert = kwargs.get("type")
            kwargs["default"] = convert(raw) if callable(convert) else raw
        action = super().add_argument(*args, **kwargs)
        if is_secret:
            self.secret.add(action.dest)
        if is_required:
            self.required_options.append((action.dest, "/".join(action.option_strings) or action.dest))
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        plain = group.add_argument

        def add(*names: Any, env_var: str | None = None, include_in_web_ui: bool = True, is_secret: bool = False,
                is_required: bool = False, is_multiple: bool = False, **options: Any) -> argparse.Action:
            if env_var and env_var in os.environ:
                options["default"] = os.environ[env_var]
            return plain(*names, **options)

        group.add_argument = add  # type: ignore[method-assign]
        return group

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"the script's options: {message}")


def parse_script_args(args: Sequence[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The script's option values and the user class names, from the words loadgen's options left."""
    from loadgen.script.events import events

    parser = LocustArgumentParser()
    events.init_command_line_parser.fire(parser=parser)
    namespace, rest = parser.parse_known_args(list(args))
    for word in rest:
        if word.startswith("-"):
            raise UsageError(unknown_flag(word))
    for dest, shown in parser.required_options:
        if getattr(namespace, dest, None) in (None, ""):
            raise UsageError(f"the script needs {shown}: give it on the command line")
    return vars(namespace), tuple(rest)


def unknown_flag(word: str) -> str:
    flag = word.split("=", 1)[0]
    instead = LOCUST_FLAGS.get(flag)
    if instead is not None:
        return f"No such option: {flag} (a Locust flag loadgen does not take; instead: {instead})"
    return f"No such option: {flag} (see `loadgen run --help`; a script adds its own with " \
           "events.init_command_line_parser)"


def parsed_options(options: dict[str, Any], script_values: dict[str, Any]) -> argparse.Namespace:
    """``environment.parsed_options``: Locust's names for loadgen's options, and the script's own."""
    namespace = argparse.Namespace(
        host=options.get("host"), num_users=options.get("users"), users=options.get("users"),
        spawn_rate=options.get("spawn_rate"), run_time=options.get("run_time"),
        stop_timeout=options.get("stop_timeout"), tags=list(options.get("tags") or []) or None,
        exclude_tags=list(options.get("exclude_tags") or []) or None, locustfile=options.get("file"),
        user_classes=list(options.get("user_classes") or []), headless=True, iterations=options.get("iterations"),
        reset_stats=options.get("reset_stats", False), csv_prefix=options.get("csv_prefix"),
        html_file=options.get("html_path"), json_file=options.get("json_path"),
        exit_code_on_error=options.get("exit_code_on_error"), loglevel=options.get("log_level", "WARNING"),
        logfile=options.get("logfile"), expect_workers=options.get("expect_workers"),
    )
    for key, value in script_values.items():
        setattr(namespace, key, value)
    return namespace
