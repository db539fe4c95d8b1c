"""Locust's way of writing several values: ``-T a b`` (every word up to the next option) reads as
``-T a -T b``, for ``run`` and ``master``."""

from __future__ import annotations

import click

MANY_VALUES = ("-T", "--tags", "-E", "--exclude-tags")  # Locust's nargs: -T a b takes both as tags


class TestCommand(click.Command):
    """``run`` and ``master``, with Locust's several values spread out before click reads them."""

    __test__ = False  # not a pytest test class

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_values(args))


def spread_values(args: list[str]) -> list[str]:
    out: list[str] = []
    flag: str | None = None
    value_next = False
    for word in args:
        if value_next:  # the flag's own value
            out.append(word)
            value_next = False
        elif word in MANY_VALUES:
            flag, value_next = word, True
            out.append(word)
        elif flag is not None and not word.startswith("-"):
            out.extend((flag, word))
        else:
            flag = None
            out.append(word)
    return out
