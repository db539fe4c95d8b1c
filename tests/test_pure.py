"""Pure logic: dispatch, durations, stages, thresholds, config, pacing phases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadgen.app.config import load_config
from loadgen.model.dispatch import assign, class_counts, monotone_split, split_by_weight, split_rate
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
    assert max(totals) - min(totals) <= 1  # from scratch: every worker's total within one


@given(st.integers(1, 40), st.dictionaries(st.sampled_from("ABCDE"), st.integers(1, 5), min_size=1),
       st.lists(st.integers(0, 60), min_size=1, max_size=25))
def test_a_ramp_only_adds_users_and_a_ramp_down_only_removes(workers: int, weights: dict[str, int],
                                                             steps: list[int]) -> None:
    names = [f"w{i}" for i in range(workers)]
    total, current = 0, None
    for step in steps + [-s for s in steps]:  # up, then down the same way
        total = max(0, total + step)
        new = assign(names, class_counts(total, weights), current)
        for cls, n in class_counts(total, weights).items():
            per = [new[w][cls] for w in names]
            assert sum(per) == n and max(per) - min(per) <= 1
        if current is not None:
            moves = [(new[w][c] - current[w][c]) * (1 if step >= 0 else -1) for w in names for c in weights]
            assert min(moves) >= 0, "a user was stopped on a ramp up (or started on a ramp down)"
        totals = [sum(new[w].values()) for w in names]
        assert max(totals) - min(totals) <= len(weights)  # per class within one: totals within the classes
        current = new


def test_the_issue_ramp_restarts_nobody() -> None:
    """0 to 5,000 users over 200 workers and 2 classes, re-targeted in steps of 10 (the stages' 0.2 s at -r 50):
    the old rotation stopped and restarted 2,375 users on the way up; now none."""
    names = [f"w{i}" for i in range(200)]
    weights = {"Browse": 1, "Buy": 1}
    current: dict[str, dict[str, int]] | None = None
    stopped = 0
    for total in range(0, 5001, 10):
        new = assign(names, class_counts(total, weights), current)
        if current is not None:
            stopped += sum(max(0, current[w][c] - new[w][c]) for w in names for c in weights)
        current = new
    assert stopped == 0


def test_a_joiner_takes_users_from_the_others_and_nothing_else_moves() -> None:
    before = assign(["a", "b"], {"X": 10, "Y": 3})
    after = assign(["a", "b", "c"], {"X": 10, "Y": 3}, before)
    for w in ("a", "b"):
        assert all(after[w][c] <= before[w][c] for c in ("X", "Y"))  # they only give users up
    assert sum(after["c"].values()) == 13 - sum(sum(after[w].values()) for w in ("a", "b"))
    assert sorted(sum(row.values()) for row in after.values()) == [4, 4, 5]  # and the totals are even again
    back = assign(["a", "b"], {"X": 10, "Y": 3}, {w: after[w] for w in ("a", "b")})  # c leaves
    assert sorted(sum(row.values()) for row in back.values()) == [6, 7]
    assert all(back[w][c] >= after[w][c] for w in ("a", "b") for c in ("X", "Y"))  # they only take users on


@given(st.integers(0, 3000), st.dictionaries(st.sampled_from("ABCDEFG"), st.integers(1, 20), min_size=1))
def test_class_split_is_proportional_and_one_more_user_never_moves_one(total: int, weights: dict[str, int]) -> None:
    counts, more = monotone_split(total, weights), monotone_split(total + 1, weights)
    assert sum(counts.values()) == total and sum(more.values()) == total + 1
    assert all(more[k] >= counts[k] for k in weights)  # no Alabama paradox: a ramp never swaps classes
    weight_sum = sum(weights.values())
    assert all(abs(counts[k] - total * w / weight_sum) < 2 for k, w in weights.items())


def test_the_largest_remainder_would_swap_classes_on_a_ramp() -> None:
    """Why class_counts does not use split_by_weight: one more user in total takes one from a class."""
    weights = {"A": 1, "B": 1, "C": 1, "D": 3, "E": 5}
    swaps = [n for n in range(200) if any(split_by_weight(n + 1, weights)[k] < split_by_weight(n, weights)[k]
                                          for k in weights)]
    assert swaps and not [n for n in range(200) if any(monotone_split(n + 1, weights)[k] <
                                                       monotone_split(n, weights)[k] for k in weights)]


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
