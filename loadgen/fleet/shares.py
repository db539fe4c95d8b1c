"""Each worker's share of the fleet's target, as the messages that carry it (pure: no sockets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loadgen.fleet.protocol import Rate, Target
from loadgen.model.dispatch import assign, class_counts, split_by_weight, split_rate
from loadgen.model.plan import TestPlan
from loadgen.model.targets import LoadTarget, RateTarget

MIN_SPAWN_RATE = 0.01


def shares(test_id: str, workers: Sequence[str], target: LoadTarget, plan: TestPlan,
           weights: Mapping[str, float], fixed: Mapping[str, int],
           current: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Target | Rate]:
    """Every worker is one process and gets an equal share: absolute users per class (within one of the
    others) with its part of the spawn rate, or its part of the arrival rate and of the user pool.
    `current` is what each worker was last told to run: the new split moves as few users as it can
    (`dispatch.assign`)."""
    if not workers:
        return {}
    if isinstance(target, RateTarget):
        equal = dict.fromkeys(workers, 1.0)
        rates = split_rate(target.rate, workers)
        pools = split_by_weight(plan.max_users, equal)
        pre = split_by_weight(plan.pre_allocate, equal)
        return {w: Rate(test_id=test_id, rate=rates[w], max_users=max(1, pools[w]), pre_allocate=pre[w])
                for w in workers}
    per_worker = assign(workers, class_counts(target.users, weights, fixed), current)
    total = max(1, target.users)
    result: dict[str, Target | Rate] = {}
    for w in workers:
        share = sum(per_worker[w].values())
        rate = max(target.spawn_rate * share / total, MIN_SPAWN_RATE)
        result[w] = Target(test_id=test_id, counts=per_worker[w], spawn_rate=rate)
    return result


def handover_seconds(previous: Mapping[str, Mapping[str, int]], messages: Mapping[str, Target | Rate]) -> float:
    """How long the slowest taker needs to start its gain at its spawn rate (a join, a return): the workers
    that give users up spread their surplus over that time, so the fleet's total holds. 0 when nobody gains
    (or in the open model, where a rate moves at once)."""
    seconds = 0.0
    for worker, message in messages.items():
        if not isinstance(message, Target):
            return 0.0
        gain = sum(message.counts.values()) - sum(previous.get(worker, {}).values())
        if gain > 0:
            seconds = max(seconds, gain / max(message.spawn_rate, MIN_SPAWN_RATE))
    return seconds
