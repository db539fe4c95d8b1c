"""Task tables, task sets and Markov chains as classes (no I/O): what each chooses, and the one-line errors
of a broken chain."""

from __future__ import annotations

from collections import Counter

import pytest

from loadgen.script.markov import (
    InvalidTransitionError,
    MarkovTaskSet,
    MarkovTaskTagError,
    NoMarkovTasksError,
    NonMarkovTaskTransitionError,
    transition,
    transitions,
)
from loadgen.script.tags import tag
from loadgen.script.tasksets import SequentialTaskSet, TaskSet
from loadgen.script.users import User, task


def names(table: list[tuple[str, object]]) -> list[str]:
    return [name for name, _ in table]


def test_tables_take_tasks_lists_dicts_pairs_and_decorated_methods() -> None:
    def free(user: object) -> None: ...

    class Inner(TaskSet):
        @task
        def leaf(self) -> None: ...

    class Listed(User):
        tasks = [free, (Inner, 2)]

    class Weighted(User):
        tasks = {free: 3}

        @task(2)
        def own(self) -> None: ...

    class Child(Weighted):
        @task(5)
        def own(self) -> None: ...  # overridden: counted once, with the child's weight

    assert names(Listed._task_table) == ["free", "Inner", "Inner"]
    assert Counter(names(Weighted._task_table)) == {"free": 3, "own": 2}
    assert Counter(names(Child._task_table)) == {"free": 3, "own": 5}
    assert names(Inner._task_table) == ["Inner.leaf"]


def test_a_sequence_keeps_declaration_order_and_repeats_weights_in_place() -> None:
    def middle(ts: object) -> None: ...

    class Flow(SequentialTaskSet):
        @task
        def first(self) -> None: ...

        tasks = [middle]

        @task(2)
        def last(self) -> None: ...

    flow = Flow(User.__new__(User))
    order = [flow.next_task()[0] for _ in range(8)]
    assert order == ["Flow.first", "Flow.middle", "Flow.last", "Flow.last"] * 2


def test_scheduled_tasks_come_first() -> None:
    class Plain(TaskSet):
        @task
        def usual(self) -> None: ...

        def extra(self) -> None: ...

    plain = Plain(User.__new__(User))
    plain.schedule_task(plain.extra)
    plain.schedule_task(Plain.usual, first=True)
    assert [plain.next_task()[0] for _ in range(3)] == ["Plain.usual", "Plain.extra", "Plain.usual"]


def test_a_markov_chain_starts_at_its_first_task_and_follows_the_weights() -> None:
    class Chain(MarkovTaskSet):
        @transition("side", 1)
        @transition("hub", 3)
        def hub(self) -> None: ...

        @transitions(["hub"])
        def side(self) -> None: ...

    chain = Chain(User.__new__(User))
    steps = [chain.next_task()[0] for _ in range(4000)]
    assert steps[0] == "Chain.hub"
    after_hub = Counter(b for a, b in zip(steps, steps[1:]) if a == "Chain.hub")
    share = after_hub["Chain.side"] / sum(after_hub.values())
    assert 0.2 < share < 0.3  # 1 of 4
    assert all(b == "Chain.hub" for a, b in zip(steps, steps[1:]) if a == "Chain.side")


def test_a_broken_chain_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(NoMarkovTasksError):
        class Empty(MarkovTaskSet):
            def nothing(self) -> None: ...
    with pytest.raises(InvalidTransitionError, match="'nowhere'"):
        class Lost(MarkovTaskSet):
            @transition("nowhere")
            def here(self) -> None: ...
    with pytest.raises(NonMarkovTaskTransitionError, match="plain"):
        class Dead(MarkovTaskSet):
            @transition("plain")
            def here(self) -> None: ...

            def plain(self) -> None: ...
    with pytest.raises(MarkovTaskTagError):
        class Tagged(MarkovTaskSet):
            @tag("x")
            @transition("here")
            def here(self) -> None: ...
