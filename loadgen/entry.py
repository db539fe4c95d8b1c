"""Console entry point: patch gevent before anything imports ssl, socket or the user's script."""

from __future__ import annotations

import sys

_EARLY = ("ssl", "socket", "threading", "select", "subprocess")


def main() -> None:
    early = [name for name in ("ssl", "urllib3", "requests", "boto3", "botocore") if name in sys.modules]
    from gevent import monkey

    monkey.patch_all()
    from loadgen import cli

    cli.EARLY_IMPORTS = early
    cli.main()
