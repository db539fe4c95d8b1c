"""Tags on tasks (``@tag``), and the task tables that ``--tags``/``--exclude-tags`` leave (pure).

As in Locust: with ``--tags``, only tasks carrying one of them run; ``--exclude-tags`` removes the tasks
carrying any of its tags; an untagged task runs unless ``--tags`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

TAGS_ATTRIBUTE = "locust_tag_set"  # Locust's own name: a task tagged for Locust is tagged here too


def tag(*names: str) -> Callable[[Any], Any]:
    """Tag a task: ``@tag("checkout", "slow")``."""
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError("@tag needs one or more tag names, e.g. @tag('checkout')")

    def mark(func: Any) -> Any:
        tags = set(getattr(func, TAGS_ATTRIBUTE, ()))
        tags.update(names)
        setattr(func, TAGS_ATTRIBUTE, tags)
        return func

    return mark


def selected(table: Sequence[tuple[str, Any]], include: Iterable[str] = (), exclude: Iterable[str] = (),
             inherited: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """The entries of a task table that the tag filters keep (the weights stay as repeated entries);
    ``inherited``: tags every entry has (those of the task set holding them)."""
    wanted, unwanted, common = set(include), set(exclude), set(inherited)
    kept = []
    for name, func in table:
        tags: set[str] = set(getattr(func, TAGS_ATTRIBUTE, ())) | common
        if wanted and not tags & wanted:
            continue
        if tags & unwanted:
            continue
        kept.append((name, func))
    return kept
