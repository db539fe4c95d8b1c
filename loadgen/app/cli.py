"""Command line: ``loadgen run | master | worker | target | keys``. Parses, validates, hands over."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from loadgen.app.config import load_config
from loadgen.app.locust_words import TestCommand
from loadgen.model.durations import parse_duration
from loadgen.model.errors import EXIT_USAGE, CommandError

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
    _opt("-T", "--tags", "tags", multiple=True, type=str,
         help="Run only the tasks tagged with one of these (@tag): -T a b, -T a -T b, or -T a,b."),
    _opt("-E", "--exclude-tags", "exclude_tags", multiple=True, type=str,
         help="Leave out the tasks tagged with one of these."),
]
LOAD_OPTIONS = [
    _opt("-u", "--users", type=click.IntRange(min=0, max=10_000_000), default=1, help="Number of concurrent users."),
    _opt("-r", "--spawn-rate", type=click.FloatRange(min=0, min_open=True), default=1.0,
         help="Users started per second."),
    _opt("-t", "--run-time", type=DURATION, default=None, help="Stop after this long: 30s, 5m, 1h30m."),
    _opt("-s", "--stop-timeout", type=DURATION, default=10.0, help="How long users get to finish their task at stop."),
    _opt("-i", "--iterations", type=click.IntRange(min=1), default=None,
         help="Stop after this many tasks in all (over the whole fleet); each user stops when they are used up."),
    _opt("--reset-stats", is_flag=True, default=False, help="Start the statistics again once every user is running."),
    _opt("--headless", is_flag=True, default=False, hidden=True, help="Accepted for Locust: loadgen is headless."),
    _opt("--exit-code-on-error", type=int, default=1, help="Exit status when requests failed."),
    _opt("--allow-empty", is_flag=True, default=False,
         help="Exit 0 even if nothing was recorded (otherwise 6: the test measured nothing)."),
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
    _opt("--tls-max", type=click.Choice(["1.2", "1.3"]), default=None,
         help="Highest TLS version offered; 1.2 resumes sessions without a new key exchange (cheaper churn)."),
    _opt("--pool", type=str, default=None, help="Connections: 'user' (one keep-alive per user) or 'shared:N'."),
    _opt("--dns-ttl", type=click.FloatRange(min=0), default=300.0, help="DNS cache TTL in seconds; 0 = off."),
    _opt("--dns-select", type=click.Choice(["first", "random", "round-robin"]), default="round-robin",
         help="Which address of a name each new connection uses."),
    _opt("--dns-ipv6", is_flag=True, default=False, help="Prefer IPv6 addresses."),
    _opt("--dns-server", type=str, default=None, help="Resolve through this DNS server, HOST:PORT."),
    _opt("--stall-timeout", type=DURATION, default=30.0, help="Report users stuck in one task this long."),
    _opt("--max-rss", type=click.FloatRange(min=1), default=None, help="Stop spawning above this RSS (MB)."),
    _opt("--max-blocking", type=click.FloatRange(min=0), default=0.5,
         help="Report calls that block the event loop this many seconds; 0 = off."),
]
OUTPUT_OPTIONS = [
    _opt("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the JSON report here."),
    _opt("--csv", "csv_prefix", type=str, default=None, help="Write PREFIX_stats/errors/timeline.csv."),
    _opt("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="Write an HTML report here."),
    _opt("--junit", "junit_path", type=click.Path(dir_okay=False), default=None,
         help="Write a JUnit XML report here (thresholds and failing endpoints as test cases)."),
    _opt("--stream", type=str, default=None, help="Publish live snapshots on ZeroMQ PUB, e.g. tcp://127.0.0.1:5558."),
    _opt("--web", type=str, default=None, help="Serve the live dashboard and web API on HOST:PORT, e.g. 127.0.0.1:8089."),
    _opt("--web-token", type=str, default=None,
         help="Token the dashboard's controls need (Authorization: Bearer). Default on a non-loopback --web or "
              "with --web-private: a random one, printed at start."),
    _opt("--web-private", is_flag=True, default=False, help="The dashboard's reads need the token too."),
    _opt("--web-cert", type=str, default=None, help="Serve the dashboard over HTTPS with this certificate (PEM)."),
    _opt("--web-key", type=str, default=None, help="The private key (PEM) of --web-cert."),
    _opt("--prometheus", type=str, default=None, help="Serve Prometheus /metrics on HOST:PORT, e.g. 127.0.0.1:9646."),
    _opt("--csv-full-history", is_flag=True, default=False,
         help="With --csv: also PREFIX_stats_history.csv, a row per endpoint (the 200 busiest) and the aggregate "
              "every second."),
    _opt("-q", "--quiet", "--only-summary", "quiet", is_flag=True, default=False,
         help="No live output; the summary only."),
    _opt("-L", "--log-level", "--loglevel", "log_level",
         type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
         default="warning", help="Logging verbosity."),
    _opt("--logfile", type=click.Path(dir_okay=False), default=None, help="Write the log here instead of stderr."),
]
SCRIPT_ARGS = {"ignore_unknown_options": True, "allow_extra_args": True}
LOCUST_CONFIG = _opt("--config", "locust_config", type=str, default=None, envvar=None,
                     help="A Locust config file (locust.conf, or .toml with [tool.locust]); default: ./locust.conf "
                          "or [tool.locust] in ./pyproject.toml when present. The command line wins.")


def _test_options(params: dict[str, Any]) -> Any:
    from loadgen.model.options import TestOptions

    params.pop("headless", None)
    _setup_logging(params.pop("log_level", "warning"), params.get("logfile"))
    params["tls_resume"] = not params.pop("no_tls_resume", False)
    params["script_args"] = tuple(params.pop("user_classes", ()))  # class names and the script's own options
    params["thresholds"] = tuple(params.get("thresholds", ()))
    for key in ("tags", "exclude_tags"):  # -T a -T b, or -T a,b
        params[key] = tuple(t for value in params.get(key, ()) for t in value.split(",") if t)
    return TestOptions.from_dict(params)


def _setup_logging(level: str, logfile: str | None = None) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if logfile:
        try:
            handler: logging.Handler = logging.FileHandler(logfile)
        except OSError as exc:
            raise click.UsageError(f"--logfile {logfile}: {exc.strerror}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, envvar="LOADGEN_CONFIG",
              help="Options file (default: ./loadgen.toml or [tool.loadgen] in ./pyproject.toml).")
@click.version_option(package_name="loadgen")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """loadgen: distributed load generation for HTTP(S) services."""
    defaults = load_config(config_path)
    ctx.default_map = {name: defaults for name in ("run", "master", "worker")}


PROCESSES_HELP = ("Generate the load from N processes on this machine: a number, or 'auto' (one per core). "
                  "The report has a row per process.")


@cli.command(cls=TestCommand, context_settings=SCRIPT_ARGS)
@_apply(SCRIPT_OPTIONS + LOAD_OPTIONS + CLIENT_OPTIONS + OUTPUT_OPTIONS)
@_opt("--processes", type=str, default="1", help=PROCESSES_HELP)
@LOCUST_CONFIG
@click.argument("user_classes", nargs=-1, type=click.UNPROCESSED)
def run(**params: Any) -> None:
    """Run a load test in this process (or in --processes N of them)."""
    from loadgen.app.locust_config import apply_locust_config
    from loadgen.control.local import run_local

    apply_locust_config(click.get_current_context(), params, params.pop("locust_config"))
    from loadgen.control.processes import run_processes
    from loadgen.fleet.supervisor import parse_processes

    count = parse_processes(params.pop("processes"))
    options = _test_options(params)
    sys.exit(run_local(options) if count == 1 else run_processes(options, count))


MASTER_OPTIONS = [
    _opt("--bind", default="0.0.0.0:5557", help="Address workers connect to, HOST:PORT."),
    _opt("--expect-workers", type=click.IntRange(min=1), default=1,
         help="Worker machines to wait for before starting (a --processes N worker counts once)."),
    _opt("--expect-processes", type=click.IntRange(min=1), default=None,
         help="Wait for this many worker processes instead (every process counts)."),
    _opt("--expect-workers-timeout", type=DURATION, default=60.0, help="How long to wait for them."),
    _opt("--heartbeat-interval", type=DURATION, default=1.0, help="Seconds between heartbeats, both ways."),
    _opt("--heartbeat-timeout", type=DURATION, default=3.0, help="A worker silent this long is lost."),
    _opt("--keys", "keys_dir", type=str, default=None,
         help="The fleet's keys (made by 'loadgen keys DIR'; env LOADGEN_KEYS). Default: ~/.config/loadgen/fleet, "
              "made on first use."),
    _opt("--insecure-no-auth", is_flag=True, default=False,
         help="No CURVE: anyone who reaches --bind can join and read the script. Trusted networks only."),
    _opt("--curve-secret-key", type=str, default=None, help="Instead of --keys: the master's keypair (.key_secret)."),
    _opt("--curve-allow", type=str, default=None, help="With --curve-secret-key: the allowed workers' public keys."),
]


@cli.command(cls=TestCommand, context_settings=SCRIPT_ARGS)
@_apply(SCRIPT_OPTIONS + LOAD_OPTIONS + CLIENT_OPTIONS + OUTPUT_OPTIONS + MASTER_OPTIONS)
@_opt("--processes", type=str, default="0",
      help="Also run N worker processes on this machine ('auto': one per core); they count as one of "
           "--expect-workers.")
@LOCUST_CONFIG
@click.argument("user_classes", nargs=-1, type=click.UNPROCESSED)
def master(**params: Any) -> None:
    """Coordinate workers: distribute users, watch their health, merge their statistics."""
    from loadgen.app.locust_config import apply_locust_config

    apply_locust_config(click.get_current_context(), params, params.pop("locust_config"))
    from loadgen.control.processes import LocalWorkers, local_address
    from loadgen.control.remote import FleetOptions, run_master
    from loadgen.fleet.keyring import keys_for_master
    from loadgen.fleet.supervisor import parse_processes

    names = ("bind", "expect_workers", "expect_processes", "expect_workers_timeout", "heartbeat_interval",
             "heartbeat_timeout")
    fleet = {name: params.pop(name) for name in names}
    from loadgen.fleet.lease import check_timeouts

    problem = check_timeouts(fleet["heartbeat_timeout"], fleet["heartbeat_interval"])
    if problem is not None:
        raise click.UsageError(problem)
    processes = params.pop("processes")
    count = 0 if processes == "0" else parse_processes(processes)
    keys = keys_for_master(params.pop("keys_dir"), params.pop("curve_secret_key"), params.pop("curve_allow"),
                           params.pop("insecure_no_auth"))
    options = _test_options(params)
    if not count:
        sys.exit(run_master(options, FleetOptions(**fleet, keys=keys)))
    options.validate()  # before a worker is started for it
    with LocalWorkers(count, local_address(fleet["bind"]), keys):
        code = run_master(options, FleetOptions(**fleet, keys=keys))
    sys.exit(code)


@cli.command()
@_opt("--master", "master_address", required=True, help="The master: HOST or HOST:PORT (port 5557 by default).")
@_opt("-f", "--file", "file", type=str, default=None, help="Use this script instead of the master's.")
@_opt("--processes", type=str, default="1", help="Worker processes on this machine: a number or 'auto' (one per core).")
@_opt("--stay", is_flag=True, default=False, help="Stay connected for the next test instead of exiting.")
@_opt("--heartbeat-interval", type=DURATION, default=1.0, help="Seconds between heartbeats.")
@_opt("--master-timeout", type=DURATION, default=10.0, help="Stop users when the master is silent this long.")
@_opt("--give-up-after", type=DURATION, default=120.0,
      help="Without --stay: exit (status 5) when no master has answered this long. 0: never.")
@_opt("--keys", "keys_dir", type=str, default=None,
      help="This worker's part of the fleet's keys (DIR/worker from 'loadgen keys DIR'). "
           "Default: $LOADGEN_KEYS or ~/.config/loadgen/fleet.")
@_opt("--insecure-no-auth", is_flag=True, default=False,
      help="No CURVE: run whatever script answers at --master. Trusted networks only.")
@_opt("--curve-secret-key", type=str, default=None, help="Instead of --keys: this worker's keypair (.key_secret).")
@_opt("--curve-master-key", type=str, default=None, help="With --curve-secret-key: the master's public key (.key).")
@_opt("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
      default="warning", help="Logging verbosity.")
def worker(master_address: str, file: str | None, processes: str, stay: bool, heartbeat_interval: float,
           master_timeout: float, give_up_after: float, keys_dir: str | None, insecure_no_auth: bool,
           curve_secret_key: str | None, curve_master_key: str | None, log_level: str) -> None:
    """Generate load for a master."""
    from loadgen.fleet.keyring import insecure_warning, keys_for_worker
    from loadgen.fleet.link import parse_master_address
    from loadgen.fleet.supervisor import hub_endpoint, parse_processes
    from loadgen.fleet.worker import Worker

    _setup_logging(log_level)
    parse_master_address(master_address)
    count = parse_processes(processes)
    hub = hub_endpoint()  # a process of a --processes N machine: its hub is its master
    keys = None
    if hub is None:
        keys = keys_for_worker(keys_dir, curve_secret_key, curve_master_key, insecure_no_auth)
        if keys is None:
            click.echo(insecure_warning("worker", master_address), err=True)
    if file is not None:
        from loadgen.script.loader import load_script

        load_script(file)  # fail fast on a broken script
    if count > 1:
        from loadgen.fleet.host import run_machine

        sys.exit(run_machine(count, sys.argv, master_address, heartbeat_interval, master_timeout, stay, keys,
                             give_up_after))
    sys.exit(Worker(master_address, script_path=file, heartbeat_interval=heartbeat_interval,
                    master_timeout=master_timeout, stay=stay or hub is not None, keys=keys, endpoint=hub,
                    give_up_after=give_up_after if hub is None else 0.0).run())


class _KeysGroup(click.Group):
    """``loadgen keys DIR`` makes a fleet's keys; ``loadgen keys generate|fingerprint …`` are subcommands."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["new", *args]
        return super().resolve_command(ctx, args)


@cli.group(cls=_KeysGroup)
def keys() -> None:
    """CURVE keys for authenticated, encrypted master/worker links: 'loadgen keys DIR' makes a fleet's."""


@keys.command("new")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--workers", type=click.IntRange(min=0), default=0,
              help="A keypair for each of N workers (DIR/worker-1 ...), each id bound to its own key. "
                   "Default: one keypair all workers share (DIR/worker).")
@click.option("--force", is_flag=True, help="Replace the keys already in DIRECTORY.")
def keys_new(directory: str, workers: int, force: bool) -> None:
    """Make a fleet's keys in DIRECTORY: the master's part and the workers'."""
    from loadgen.fleet.keyring import create_fleet

    fleet = create_fleet(directory, workers, force)
    parts = ", ".join(fleet.worker_dirs) if len(fleet.worker_dirs) <= 3 else \
        f"{fleet.worker_dirs[0]} ... {fleet.worker_dirs[-1]}"
    click.echo(f"master key {fleet.master_fingerprint}\n"
               f"  on the master:     loadgen master --keys {fleet.master_dir} ...  (keep it there: it holds the "
               "master's secret)\n"
               f"  on each worker:    loadgen worker --keys {fleet.worker_dirs[0]} --master HOST  "
               f"(copy {parts} to the workers)")


@keys.command("generate")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", default="loadgen", show_default=True, help="Key name: NAME.key and NAME.key_secret.")
def keys_generate(directory: str, name: str) -> None:
    """Write one keypair into DIRECTORY (for --curve-secret-key and friends)."""
    from loadgen.fleet.security import fingerprint, generate_keys, load_public

    public, secret = generate_keys(directory, name)
    click.echo(f"public key: {public} ({fingerprint(load_public(public))})\nsecret key: {secret} (keep it private)")


@keys.command("fingerprint")
@click.argument("key_file", type=click.Path(dir_okay=False))
def keys_fingerprint(key_file: str) -> None:
    """Print a key file's fingerprint (what the master and the workers print)."""
    from loadgen.fleet.security import fingerprint, load_public

    click.echo(fingerprint(load_public(key_file)))


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
    except CommandError as exc:
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
