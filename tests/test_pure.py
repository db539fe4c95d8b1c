"""Pure logic: dispatch, durations, stages, thresholds, config, pacing phases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadgen.app.config import load_config
from loadgen.model.dispatch import assign, class_counts, split_by_weight, split_rate
from loadgen.model.durations import parse_duration
from loadgen.model.errors import UsageError
from loadgen.model.stages import parse_stages, stage_target
from loadgen.model.thresholds import evaluate, parse_threshold
from loadgen.script.pacing import phase


@given(st.integers(0, 10_000), st.dictionaries(st.sampled_from("ABCDEFG"), st.integers(1, 20), min_size=1))
def test_split_by_weight_sums_and_is_proportional(total: int, weights: dict[str, int]) -> None:
    counts = split_by_weight(total, weights)
    assert sum(counts.values()) == total
    weight_sum = sum(weights.values())
    for key, w in weights.items():
        assert abs(counts[key] - total * w / weight_sum) < 1


@given(st.lists(st.text("abcdef", min_size=1, max_size=3), min_size=1, max_size=12, unique=True),
       st.dictionaries(st.sampled_from("XYZ"), st.integers(0, 500), min_size=1))
def test_assign_balances_each_class_and_each_worker(workers: list[str], counts: dict[str, int]) -> None:
    result = assign(workers, counts)
    for cls, n in counts.items():
        per = [result[w][cls] for w in workers]
        assert sum(per) == n and max(per) - min(per) <= 1
    totals = [sum(result[w].values()) for w in workers]
    assert max(totals) - min(totals) <= 1


def test_split_rate_is_equal_per_process() -> None:
    assert split_rate(90.0, ["a", "b", "c"]) == {"a": 30.0, "b": 30.0, "c": 30.0}
    assert split_rate(5.0, []) == {}


def test_class_counts_fixed_first() -> None:
    assert class_counts(10, {"A": 1, "B": 1}, {"A": 3}) == {"A": 3, "B": 7}
    assert class_counts(2, {"A": 1, "B": 1}, {"A": 3}) == {"A": 2, "B": 0}


@pytest.mark.parametrize("text,seconds", [("30", 30), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25),
                                          ("1h2m3s", 3723), ("1.5s", 1.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5x", "m5", "1h 30m", "-5s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_stages_ramp_linearly() -> None:
    stages = parse_stages("10s:100,20s:100,10s:0")
    assert stage_target(stages, 0) == 0
    assert stage_target(stages, 5) == pytest.approx(50)
    assert stage_target(stages, 15) == 100
    assert stage_target(stages, 35) == pytest.approx(50)
    assert stage_target(stages, 40.1) is None
    with pytest.raises(ValueError, match="DURATION:TARGET"):
        parse_stages("10s")
    with pytest.raises(ValueError, match="not a number"):
        parse_stages("10s:x")


def test_thresholds_parse_and_evaluate() -> None:
    report = {"totals": {"requests": 1000, "failures": 5, "rps": 1200.0, "dropped": 0,
                         "latency_ms": {"p99": 250.0, "p95": 120.0, "mean": 20.0}},
              "endpoints": [{"name": "/cart", "requests": 10, "failures": 0, "rps": 1.0,
                             "latency_ms": {"p95": 300.0}}]}
    rules = [parse_threshold(t) for t in ("p99<300ms", "p95<0.1s", "error_rate<0.01", "rps>1000",
                                          "name=/cart:p95<200ms", "error_rate<1%")]
    assert [r["pass"] for r in evaluate(rules, report)] == [True, False, True, True, False, True]
    assert rules[1].value == 100.0
    for bad in ("p99", "p99<<3", "latency<3ms", "rps>10ms", "p99<5%", ""):
        with pytest.raises(ValueError, match="threshold"):
            parse_threshold(bad)


def test_config_from_loadgen_toml_and_pyproject(tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.loadgen]\nusers = 7\nrun-time = "5s"\n')
    assert load_config(cwd=str(tmp_path)) == {"users": 7, "run_time": "5s"}
    (tmp_path / "loadgen.toml").write_text('users = 9\njson = "r.json"\nthreshold = "p99<1s"\n')
    assert load_config(cwd=str(tmp_path)) == {"users": 9, "json_path": "r.json", "thresholds": ["p99<1s"]}
    (tmp_path / "bad.toml").write_text("users = = 3")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(str(tmp_path / "bad.toml"))
    with pytest.raises(UsageError, match="not found"):
        load_config(str(tmp_path / "missing.toml"))


def test_phases_spread_evenly() -> None:
    n = 500
    phases = sorted(phase(i, 1.0) for i in range(n))
    # every tenth of the interval holds close to a tenth of the users
    for k in range(10):
        inside = sum(1 for p in phases if k / 10 <= p < (k + 1) / 10)
        assert abs(inside - n / 10) <= 3
