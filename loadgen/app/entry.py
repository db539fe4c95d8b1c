"""Console entry point: patch gevent before anything imports ssl, socket or the user's script."""

from __future__ import annotations

from loadgen.engine.patching import patch


def main() -> None:
    patch()
    from loadgen.app import cli

    cli.main()
