"""Pure arithmetic of who runs what: user counts per class and per worker, rate shares."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def split_by_weight(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` over keys in proportion to weights (largest remainder, ties by key order)."""
    if total <= 0 or not weights:
        return dict.fromkeys(weights, 0)
    weight_sum = float(sum(weights.values()))
    if weight_sum <= 0:
        raise ValueError("every weight is zero; give at least one a positive weight")
    exact = {key: total * w / weight_sum for key, w in weights.items()}
    counts = {key: int(value) for key, value in exact.items()}
    remaining = total - sum(counts.values())
    order = sorted(weights, key=lambda k: (-(exact[k] - counts[k]), list(weights).index(k)))
    for key in order[:remaining]:
        counts[key] += 1
    return counts


def monotone_split(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` in proportion to weights so that one more in total never takes one from any key (no
    Alabama paradox, which the largest remainder has): Sainte-Laguë's divisor method, the first ``total`` of
    the values weight/0.5, weight/1.5, weight/2.5, ... over all keys (ties by key order), the least biased of
    the divisor methods. Computed from a bound below every key's share (its quota less the number of keys),
    then one pick at a time: O(keys² log keys) per split, whatever the total."""
    keys = [k for k, w in weights.items() if w > 0]
    counts = dict.fromkeys(weights, 0)
    if total <= 0 or not keys:
        if total > 0 and weights:
            raise ValueError("every weight is zero; give at least one a positive weight")
        return counts
    weight_sum = float(sum(weights[k] for k in keys))
    for k in keys:
        counts[k] = max(0, int(total * weights[k] / weight_sum) - len(keys))
    order = {k: i for i, k in enumerate(keys)}
    heap = [(-weights[k] / (counts[k] + 0.5), order[k], k) for k in keys]
    heapq.heapify(heap)
    for _ in range(total - sum(counts.values())):
        _, i, k = heapq.heappop(heap)
        counts[k] += 1
        heapq.heappush(heap, (-weights[k] / (counts[k] + 0.5), i, k))
    return counts


def class_counts(total: int, weights: Mapping[str, float], fixed: Mapping[str, int] | None = None,
                 only: Sequence[str] = ()) -> dict[str, int]:
    """Users per class: fixed counts first, the rest by weight (`monotone_split`: a ramp never moves a user
    from one class to another); ``only``: the other classes get none."""
    counts = dict.fromkeys(weights, 0)
    if only:
        weights = {k: w for k, w in weights.items() if k in only}
    fixed = {k: v for k, v in (fixed or {}).items() if v > 0 and k in weights}
    left = total
    for key, n in fixed.items():
        take = min(n, left)
        counts[key] = take
        left -= take
    weighted = {k: w for k, w in weights.items() if k not in fixed}
    counts.update(monotone_split(left, weighted))
    return counts


def assign(workers: Sequence[str], counts: Mapping[str, int],
           current: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Spread class counts over workers (each one process): per class, worker counts differ by at most one.

    Given `current` (what each worker runs now), the split moves as few users as it can: a class's extra
    users stay with the workers that already run more of it, so a ramp only adds users and a ramp down only
    removes them; no user is stopped and started again elsewhere. Among equals the extra users go to the
    workers with the fewest users so far, then in an order that rotates from class to class. Workers'
    totals stay within one of each other when the set of workers changes (users move then anyway, one at a
    time from the fullest to the emptiest); between such changes, within one per class."""
    result = {w: dict.fromkeys(counts, 0) for w in workers}
    n_workers = len(workers)
    if not n_workers:
        return result
    now = current or {}
    totals = dict.fromkeys(workers, 0)
    position = {w: i for i, w in enumerate(workers)}
    rotation = 0
    for cls, n in counts.items():
        base, extra = divmod(n, n_workers)
        if extra:
            ranked = sorted(workers, key=lambda w: (-now.get(w, {}).get(cls, 0), totals[w],
                                                    (position[w] - rotation) % n_workers))
            lucky = set(ranked[:extra])
            rotation = (rotation + extra) % n_workers
        else:
            lucky = set()
        for w in workers:
            count = base + (1 if w in lucky else 0)
            result[w][cls] = count
            totals[w] += count
    if set(now) != set(workers):
        _even_totals(result, workers)
    return result


def _even_totals(result: dict[str, dict[str, int]], workers: Sequence[str]) -> None:
    """Move single users from the fullest worker to the emptiest until totals are within one; per class
    the two differ by one at most, so each move keeps every class within one too."""
    for _ in range(sum(sum(row.values()) for row in result.values()) + 1):
        totals = {w: sum(result[w].values()) for w in workers}
        full = max(workers, key=totals.__getitem__)
        empty = min(workers, key=totals.__getitem__)
        if totals[full] - totals[empty] <= 1:
            return
        cls = next(c for c in result[full] if result[full][c] > result[empty][c])
        result[full][cls] -= 1
        result[empty][cls] += 1


def split_rate(rate: float, workers: Sequence[str]) -> dict[str, float]:
    """Open model: each worker's equal share of an arrival rate."""
    if not workers:
        return {}
    return {w: rate / len(workers) for w in workers}
