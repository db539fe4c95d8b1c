"""Command line: ``loadgen run | master | worker | target | keys``. Parses, validates, hands over."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from loadgen.config import load_config
from loadgen.durations import parse_duration
from loadgen.errors import EXIT_USAGE, LoadgenError

F = Callable[..., Any]


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def _opt(*decls: str, **kwargs: Any) -> F:
    """A click option that also reads LOADGEN_<NAME> from the environment."""
    name = next(d for d in decls if d.startswith("--")).lstrip("-").split("/")[0]
    kwargs.setdefault("envvar", "LOADGEN_" + name.upper().replace("-", "_"))
    kwargs.setdefault("show_default", "default" in kwargs and not kwargs.get("is_flag"))
    return click.option(*decls, **kwargs)


def _apply(options: list[F]) -> F:
    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


SCRIPT_OPTIONS = [
    _opt("-f", "--file", "file", type=str, help="Script defining user classes (a .py file or package)."),
    _opt("-H", "--host", type=str, help="Base URL of the target, e.g. https://127.0.0.1:8443."),
]
LOAD_OPTIONS = [
    _opt("-u", "--users", type=click.IntRange(min=0), default=1, help="Number of concurrent users."),
    _opt("-r", "--spawn-rate", type=click.FloatRange(min=0, min_open=True), default=1.0,
         help="Users started per second."),
    _opt("-t", "--run-time", type=DURATION, default=None, help="Stop after this long: 30s, 5m, 1h30m."),
    _opt("--stop-timeout", type=DURATION, default=10.0, help="How long users get to finish their task at stop."),
    _opt("--exit-code-on-error", type=int, default=1, help="Exit status when requests failed."),
    _opt("--arrival-rate", type=click.FloatRange(min=0), default=None,
         help="Open model: iterations started per second, whatever the response times."),
    _opt("--max-users", type=click.IntRange(min=1), default=None, help="Open model: the user pool's size."),
    _opt("--pre-allocate", type=click.IntRange(min=0), default=0, help="Open model: users created up front."),
    _opt("--stages", type=str, default=None, help="Ramp plan, e.g. 30s:100,2m:100,30s:0."),
    _opt("--threshold", "thresholds", multiple=True, type=str,
         help="Pass/fail rule, repeatable: p99<300ms, error_rate<0.01, rps>1000, name=/cart:p95<200ms."),
    _opt("--abort-on-threshold", is_flag=True, default=False, help="Stop as soon as a threshold fails."),
]
CLIENT_OPTIONS = [
    _opt("--insecure", is_flag=True, default=False, help="Do not verify TLS certificates."),
    _opt("--ca-bundle", type=click.Path(exists=True, dir_okay=False), default=None, help="Extra CA certificates (PEM)."),
    _opt("--client-cert", type=click.Path(exists=True, dir_okay=False), default=None, help="Client certificate (PEM)."),
    _opt("--client-key", type=click.Path(exists=True, dir_okay=False), default=None, help="Client key (PEM)."),
    _opt("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, help="Seconds."),
    _opt("--read-timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, help="Seconds."),
    _opt("--no-tls-resume", "no_tls_resume", is_flag=True, default=False, help="Full TLS handshake on every connect."),
    _opt("--pool", type=str, default=None, help="Connections: 'user' (one keep-alive per user) or 'shared:N'."),
    _opt("--dns-ttl", type=click.FloatRange(min=0), default=300.0, help="DNS cache TTL in seconds; 0 = off."),
    _opt("--dns-select", type=click.Choice(["first", "random", "round-robin"]), default="round-robin",
         help="Which address of a name each new connection uses."),
    _opt("--dns-ipv6", is_flag=True, default=False, help="Prefer IPv6 addresses."),
    _opt("--dns-server", type=str, default=None, help="Resolve through this DNS server, HOST:PORT."),
    _opt("--stall-timeout", type=DURATION, default=30.0, help="Report users stuck in one task this long."),
    _opt("--max-rss", type=click.FloatRange(min=1), default=None, help="Stop spawning above this RSS (MB)."),
]
OUTPUT_OPTIONS = [
    _opt("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the JSON report here."),
    _opt("--csv", "csv_prefix", type=str, default=None, help="Write PREFIX_stats/errors/timeline.csv."),
    _opt("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="Write an HTML report here."),
    _opt("-q", "--quiet", is_flag=True, default=False, help="No live output; the summary only."),
    _opt("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
         default="warning", help="Logging verbosity."),
]


def _test_options(params: dict[str, Any]) -> Any:
    from loadgen.options import TestOptions

    _setup_logging(params.pop("log_level", "warning"))
    params["tls_resume"] = not params.pop("no_tls_resume", False)
    params["user_classes"] = tuple(params.pop("user_classes", ()))
    params["thresholds"] = tuple(params.get("thresholds", ()))
    return TestOptions.from_dict(params)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, envvar="LOADGEN_CONFIG",
              help="Options file (default: ./loadgen.toml or [tool.loadgen] in ./pyproject.toml).")
@click.version_option(package_name="loadgen")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """loadgen: distributed load generation for HTTP(S) services."""
    defaults = load_config(config_path)
    ctx.default_map = {name: defaults for name in ("run", "master", "worker")}


@cli.command()
@_apply(SCRIPT_OPTIONS + LOAD_OPTIONS + CLIENT_OPTIONS + OUTPUT_OPTIONS)
@click.argument("user_classes", nargs=-1)
def run(**params: Any) -> None:
    """Run a load test in this process."""
    from loadgen.local import run_local

    sys.exit(run_local(_test_options(params)))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated self-signed certificate.")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True)
def target(host: str, port: int, tls: bool, certfile: str | None, keyfile: str | None, processes: int) -> None:
    """Serve the built-in test target (/, /status/N, /delay/MS, /bytes/N, /stall, ...)."""
    from loadgen.target import serve

    serve(host=host, port=port, tls=tls, certfile=certfile, keyfile=keyfile, processes=processes)


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors are one line on stderr and a documented exit status."""
    prog = "loadgen"
    try:
        cli.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.NoSuchOption as exc:
        _fail(f"{exc.format_message()} (see '{_command_path(exc)} --help')", EXIT_USAGE)
    except click.UsageError as exc:
        _fail(f"{exc.format_message()} (see '{_command_path(exc)} --help')", EXIT_USAGE)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except LoadgenError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in loadgen: one line, details in the debug log
        logging.getLogger("loadgen").debug("internal error", exc_info=True)
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --log-level debug for details)", 70)
    sys.exit(0)


def _command_path(exc: click.UsageError) -> str:
    return exc.ctx.command_path if exc.ctx is not None else "loadgen"


def _fail(message: str, code: int) -> None:
    click.echo(f"loadgen: error: {message}", err=True)
    sys.stdout.flush()
    os._exit(code) if code == 130 else sys.exit(code)
