"""Pure arithmetic of who runs what: user counts per class and per worker, rate shares."""

from __future__ import annotations

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


def class_counts(total: int, weights: Mapping[str, float], fixed: Mapping[str, int] | None = None) -> dict[str, int]:
    """Users per class: fixed counts first, the rest by weight."""
    fixed = {k: v for k, v in (fixed or {}).items() if v > 0}
    counts = dict.fromkeys(weights, 0)
    left = total
    for key, n in fixed.items():
        take = min(n, left)
        counts[key] = take
        left -= take
    weighted = {k: w for k, w in weights.items() if k not in fixed}
    counts.update(split_by_weight(left, weighted))
    return counts


def assign(workers: Sequence[str], counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Spread class counts over workers (each one process): per class, worker counts differ by at most one,
    and the extra users rotate so that each worker's total also stays within one of the others."""
    result = {w: dict.fromkeys(counts, 0) for w in workers}
    if not workers:
        return result
    offset = 0
    for cls, n in counts.items():
        base, extra = divmod(n, len(workers))
        for i, w in enumerate(workers):
            result[w][cls] = base + (1 if (i - offset) % len(workers) < extra else 0)
        offset = (offset + extra) % len(workers)
    return result


def split_rate(rate: float, workers: Sequence[str]) -> dict[str, float]:
    """Open model: each worker's equal share of an arrival rate."""
    if not workers:
        return {}
    return {w: rate / len(workers) for w in workers}
