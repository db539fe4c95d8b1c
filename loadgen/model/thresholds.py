"""Pass/fail thresholds such as ``p99<300ms``, ``error_rate<0.01`` or ``name=/cart:p95<200ms``."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
_LATENCY = {"min", "mean", "avg", "p50", "p90", "p95", "p99", "p999", "max", "med"}
_RATES = {"error_rate", "rps", "requests", "failures", "dropped", "missed"}
_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001}
_EXPR = re.compile(
    r"^\s*(?:name=(?P<name>[^:]+):)?(?P<metric>[a-z_0-9]+)\s*(?P<op><=|>=|==|<|>)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|us|%)?\s*$"
)
HELP = "use METRIC<VALUE such as p99<300ms, error_rate<0.01, rps>1000 or name=/api/cart:p95<200ms"


@dataclass(frozen=True)
class Threshold:
    expression: str
    metric: str
    op: str
    value: float
    endpoint: str | None = None


def parse_threshold(text: str) -> Threshold:
    """Parse one expression; ValueError with a one-line hint when malformed."""
    match = _EXPR.match(text)
    if not match:
        raise ValueError(f"threshold {text!r} is malformed: {HELP}")
    metric = match["metric"]
    if metric not in _LATENCY and metric not in _RATES:
        known = ", ".join(sorted(_LATENCY | _RATES))
        raise ValueError(f"threshold {text!r}: unknown metric {metric!r} (known: {known})")
    unit = match["unit"] or ""
    value = float(match["value"])
    if metric in _LATENCY:
        if unit == "%":
            raise ValueError(f"threshold {text!r}: a latency takes ms, s or us, not %")
        value *= _UNITS[unit]
    elif unit == "%":
        value /= 100.0
    elif unit:
        raise ValueError(f"threshold {text!r}: {metric} takes no time unit")
    return Threshold(text.strip(), metric, match["op"], value, match["name"])


def observe(threshold: Threshold, report: dict[str, Any]) -> float | None:
    """The report's value for a threshold's metric (None when the endpoint is absent)."""
    if threshold.endpoint is not None:
        rows = [e for e in report["endpoints"] if e["name"] == threshold.endpoint]
        if not rows:
            return None
        requests = sum(r["requests"] for r in rows)
        failures = sum(r["failures"] for r in rows)
        scope = {"requests": requests, "failures": failures, "rps": sum(r["rps"] for r in rows),
                 "latency_ms": rows[0]["latency_ms"], "dropped": 0, "missed": 0}
    else:
        scope = report["totals"]
    metric = threshold.metric
    if metric in _LATENCY:
        key = {"avg": "mean", "med": "p50"}.get(metric, metric)
        return float(scope["latency_ms"][key])
    if metric == "error_rate":
        return scope["failures"] / scope["requests"] if scope["requests"] else 0.0
    return float(scope.get(metric, 0))


def evaluate(thresholds: list[Threshold], report: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for threshold in thresholds:
        observed = observe(threshold, report)
        passed = observed is not None and _OPS[threshold.op](observed, threshold.value)
        results.append({"expression": threshold.expression, "observed": observed, "pass": bool(passed)})
    return results
