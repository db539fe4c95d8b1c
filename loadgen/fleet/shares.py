"""Each worker's share of the fleet's target, as the messages that carry it (pure: no sockets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loadgen.fleet.protocol import Rate, Target
from loadgen.model.dispatch import assign, class_counts, split_by_weight, split_rate
from loadgen.model.plan import TestPlan
from loadgen.model.targets import LoadTarget, RateTarget

MIN_SPAWN_RATE = 0.01


def processes_of(workers: Sequence[str], sizes: Mapping[str, int] | None) -> list[str]:
    """One name per process (``worker#k``): a machine of N processes takes N equal shares."""
    sizes = sizes or {}
    return [f"{w}#{k}" for w in workers for k in range(max(1, sizes.get(w, 1)))]


def shares(test_id: str, workers: Sequence[str], target: LoadTarget, plan: TestPlan,
           weights: Mapping[str, float], fixed: Mapping[str, int],
           current: Mapping[str, Mapping[str, int]] | None = None,
           sizes: Mapping[str, int] | None = None) -> dict[str, Target | Rate]:
    """Every process gets an equal share (a machine of ``sizes[w]`` processes that many): absolute users per
    class (within one of the others, per process) with its part of the spawn rate, or its part of the arrival
    rate and of the user pool. `current` is what each worker was last told to run: the new split moves as
    few users as it can (`dispatch.assign`)."""
    if not workers:
        return {}
    procs = processes_of(workers, sizes)
    owner = {p: p.rsplit("#", 1)[0] for p in procs}
    if isinstance(target, RateTarget):
        equal = dict.fromkeys(procs, 1.0)
        rates = split_rate(target.rate, procs)
        pools = split_by_weight(plan.max_users, equal)
        pre = split_by_weight(plan.pre_allocate, equal)
        result_rates: dict[str, Target | Rate] = {}
        for w in workers:
            own = [p for p in procs if owner[p] == w]
            result_rates[w] = Rate(test_id=test_id, rate=sum(rates[p] for p in own),
                                   max_users=max(1, sum(pools[p] for p in own)), pre_allocate=sum(pre[p] for p in own))
        return result_rates
    per_process = assign(procs, class_counts(target.users, weights, fixed, target.classes), _per_process(current, workers, procs))
    per_worker: dict[str, dict[str, int]] = {w: {} for w in workers}
    for p, counts in per_process.items():
        totals = per_worker[owner[p]]
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + n
    total = max(1, target.users)
    result: dict[str, Target | Rate] = {}
    for w in workers:
        share = sum(per_worker[w].values())
        rate = max(target.spawn_rate * share / total, MIN_SPAWN_RATE)
        result[w] = Target(test_id=test_id, counts=per_worker[w], spawn_rate=rate)
    return result


def _per_process(current: Mapping[str, Mapping[str, int]] | None, workers: Sequence[str],
                 procs: Sequence[str]) -> dict[str, dict[str, int]] | None:
    """What each worker runs now, spread evenly over its processes (the start of a stable split)."""
    if current is None:
        return None
    result: dict[str, dict[str, int]] = {}
    by_worker: dict[str, list[str]] = {}
    for p in procs:
        by_worker.setdefault(p.rsplit("#", 1)[0], []).append(p)
    for w in workers:
        mine = by_worker.get(w, [])
        for name, n in (current.get(w) or {}).items():
            for p, part in split_by_weight(n, dict.fromkeys(mine, 1.0)).items():
                result.setdefault(p, {})[name] = part
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
