"""Errors that end a command with a one-line message and a documented exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_SCRIPT = 3
EXIT_THRESHOLDS = 4
EXIT_NO_MASTER = 5  # a worker without --stay gave up: no master answered for --give-up-after
EXIT_EMPTY = 6  # the test recorded nothing (or ran tasks that recorded nothing for a stall timeout)


class CommandError(Exception):
    """An error the user can fix; printed as one line."""

    exit_code = EXIT_USAGE


class UsageError(CommandError):
    exit_code = EXIT_USAGE


class ScriptError(CommandError):
    exit_code = EXIT_SCRIPT
