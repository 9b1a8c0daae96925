"""Targets: selection, weighting, constraints and turnover by hand; incremental = batch."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.strategy_lab.core.construct import (
    constraint_violations,
    decide,
    limit_turnover,
    rebalance_mask,
)
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import compute_targets


def spec(**overrides) -> StrategySpec:
    base = {
        "name": "t",
        "signal": {"kind": "feature", "feature": "f"},
        "selection": {"kind": "top_k", "k": 3},
        "constraints": {"max_weight": 0.5, "min_names": 2},
    }
    base.update(overrides)
    return StrategySpec.model_validate(base)


def test_top_k_equal_weight_by_hand():
    scores = pd.Series({"A": 3.0, "B": 1.0, "C": 2.0, "D": -1.0, "E": np.nan})
    d = decide(scores, None, spec())
    expected = pd.Series({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3, "D": 0.0, "E": 0.0})
    pd.testing.assert_series_equal(d.weights.sort_index(), expected, rtol=1e-12, atol=1e-15)


def test_cap_redistributes_excess():
    s = spec(
        selection={"kind": "top_k", "k": 3},
        weighting={"kind": "score"},
        constraints={"max_weight": 0.4, "min_names": 2},
    )
    d = decide(pd.Series({"A": 10.0, "B": 1.0, "C": 0.0, "D": -5.0}), None, s)
    w = d.weights
    assert np.isclose(w.sum(), 1.0) and w.max() <= 0.4 + 1e-12 and w["A"] == 0.4
    assert w["D"] == 0 and constraint_violations(w, s) == []


def test_long_short_quantile_is_dollar_neutral():
    s = spec(
        selection={"kind": "long_short_quantile", "quantile": 0.25},
        constraints={"max_weight": 0.5, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 2},
    )
    scores = pd.Series({c: float(i) for i, c in enumerate("ABCDEFGH")})
    w = decide(scores, None, s).weights
    assert w[["G", "H"]].tolist() == [0.25, 0.25] and w[["A", "B"]].tolist() == [-0.25, -0.25]
    assert np.isclose(w.sum(), 0.0) and np.isclose(w.abs().sum(), 1.0)


def test_inverse_vol_weights():
    s = spec(weighting={"kind": "inverse_vol", "vol_feature": "v"}, constraints={"max_weight": 0.9, "min_names": 2})
    w = decide(pd.Series({"A": 3.0, "B": 2.0, "C": 1.0}), pd.Series({"A": 0.1, "B": 0.2, "C": 0.4}), s).weights
    assert np.allclose(w[["A", "B", "C"]], np.array([10, 5, 2.5]) / 17.5)


def test_too_few_names_goes_flat_with_a_reason():
    d = decide(pd.Series({"A": 1.0, "B": np.nan}), None, spec())
    assert (d.weights == 0).all() and "min_names" in d.note


def test_turnover_cap_blends_toward_new_book():
    prev = pd.Series({"A": 0.5, "B": 0.5, "C": 0.0})
    new = pd.Series({"A": 0.0, "B": 0.5, "C": 0.5})
    capped, t = limit_turnover(new, prev, 0.25)
    assert t == 0.25 and np.allclose(capped, [0.25, 0.5, 0.25])
    same, t_full = limit_turnover(new, prev, None)
    assert t_full == 0.5 and same.equals(new)


def test_rebalance_calendar():
    days = trading_days("2024-03-25", "2024-04-12")
    monthly = rebalance_mask(days, spec(rebalance={"frequency": "monthly"}))
    assert list(days[monthly]) == [pd.Timestamp("2024-04-01")]
    weekly = rebalance_mask(days, spec(rebalance={"frequency": "weekly"}))
    # 2024-03-25 is a Monday; Good Friday does not move the first session of the week.
    assert list(days[weekly].strftime("%m-%d")) == ["03-25", "04-01", "04-08"]


def _features(symbols, start, end, seed=0):
    rng = np.random.default_rng(seed)
    days = trading_days(start, end)
    return pd.DataFrame(
        [{"date": d, "symbol": s, "f": rng.normal(), "v": rng.uniform(0.1, 0.5)} for d in days for s in symbols]
    )


def test_incremental_equals_batch_with_turnover_cap():
    symbols = [f"S{i:02d}" for i in range(12)]
    feats = _features(symbols, "2024-01-02", "2024-03-29")
    s = spec(
        selection={"kind": "top_k", "k": 4},
        rebalance={"frequency": "daily"},
        constraints={"max_weight": 0.3, "min_names": 3, "max_turnover": 0.3},
    )
    batch = compute_targets(feats, s, symbols, "2024-01-02", "2024-03-29")
    prev, parts = None, []
    for day in trading_days("2024-01-02", "2024-03-29"):
        step = compute_targets(feats[feats["date"] == day], s, symbols, day, day, prev_weights=prev)
        parts.append(step.targets)
        prev = step.final_weights
    pd.testing.assert_frame_equal(batch.targets, pd.concat(parts, ignore_index=True), check_exact=True)
    assert batch.violations == [] and max(batch.turnover.values()) <= 0.3 + 1e-12


def test_weights_carry_between_rebalances():
    symbols = [f"S{i:02d}" for i in range(6)]
    feats = _features(symbols, "2024-04-01", "2024-04-30")
    out = compute_targets(feats, spec(rebalance={"frequency": "weekly"}), symbols, "2024-04-01", "2024-04-30").targets
    wide = out.pivot(index="date", columns="symbol", values="weight")
    rebal = out.groupby("date")["rebalance"].first()
    for i in range(1, len(wide)):
        if not rebal.iloc[i]:
            assert wide.iloc[i].equals(wide.iloc[i - 1])
    assert rebal.sum() == 5  # Mondays of April 2024: 1, 8, 15, 22, 29


def test_a_name_leaving_the_universe_is_sold_and_its_exit_counts_in_turnover():
    prev = pd.Series({"A": 0.5, "X": 0.5})  # X is no longer in the universe
    new = pd.Series({"A": 0.0, "B": 1.0})
    capped, t = limit_turnover(new, prev, 0.5)
    names = ["A", "B", "X"]
    moved = (capped.reindex(names, fill_value=0.0) - prev.reindex(names, fill_value=0.0)).abs().sum() / 2
    assert "X" not in capped.index and np.isclose(t, 0.5) and np.isclose(moved, t)
    assert np.allclose(capped[["A", "B"]], [1 / 3, 1 / 3])  # the exit (0.25) went first, the rest blends
    # The exits alone break the cap: the rest of the book holds and the turnover reports it.
    held, t_over = limit_turnover(new, pd.Series({"A": 0.2, "X": 0.8}), 0.3)
    assert held.tolist() == [0.2, 0.0] and np.isclose(t_over, 0.4)
    _, t_free = limit_turnover(new, prev, None)
    assert np.isclose(t_free, 0.75 + 0.25)


def test_targets_sell_a_name_that_left_the_universe_at_the_first_session():
    symbols = ["S00", "S01", "S02", "S03"]
    feats = _features(symbols, "2024-04-02", "2024-04-05")  # Tue-Fri: no weekly rebalance
    prev = pd.Series({"S00": 0.4, "S01": 0.3, "GONE": 0.3})
    s = spec(rebalance={"frequency": "weekly"}, constraints={"max_weight": 0.5, "min_names": 2, "max_turnover": 0.1})
    out = compute_targets(feats, s, symbols, "2024-04-02", "2024-04-05", prev_weights=prev)
    first = pd.Timestamp("2024-04-02")
    assert set(out.targets["symbol"]) == set(symbols)
    assert list(out.turnover) == [first] and np.isclose(out.turnover[first], 0.15)
    assert out.notes == ["2024-04-02: sold GONE (left the universe)"]
    assert out.violations == ["2024-04-02: turnover 0.1500 exceeds max_turnover 0.1"]
    day1 = out.targets[out.targets["date"] == first].set_index("symbol")["weight"]
    assert day1.to_dict() == {"S00": 0.4, "S01": 0.3, "S02": 0.0, "S03": 0.0}


# Time-series selection: each name on its own, long above, short below, flat in between.


def _trend(**over) -> StrategySpec:
    base = {
        "name": "t",
        "signal": {"kind": "feature", "feature": "x"},
        "selection": {"kind": "threshold", "feature": "x", "long_above": 1.0, "short_below": 0.97},
        "rebalance": {"frequency": "daily"},
        "constraints": {"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 1},
    }
    base.update(over)
    return StrategySpec.model_validate(base)


def test_threshold_on_one_name_by_hand():
    days = trading_days("2024-04-01", "2024-04-05")
    feats = pd.DataFrame({"date": days, "symbol": "GOOG", "x": [1.02, 0.99, 0.95, np.nan, 1.01]})
    out = compute_targets(feats, _trend(), ["GOOG"], days[0], days[-1])
    # long, flat (between 0.97 and 1.0), short, flat (no value: not scorable), long
    assert out.targets["weight"].tolist() == [1.0, 0.0, -1.0, 0.0, 1.0]
    assert out.targets["score"].tolist()[:3] == [1.02, 0.99, 0.95]
    assert out.violations == [] and out.notes == ["2024-04-04: 0 scorable names < min_names 1: flat"]
    assert [round(t, 12) for t in out.turnover.values()] == [0.5, 0.5, 0.5, 0.5, 0.5]


def test_threshold_per_name_splits_gross_between_the_sides():
    s = _trend(constraints={"max_weight": 0.5, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 1})
    w = decide(pd.Series({"A": 1.05, "B": 1.01, "C": 0.9, "D": 0.98}), None, s).weights
    assert w.to_dict() == {"A": 0.25, "B": 0.25, "C": -0.5, "D": 0.0}
    # One side alone takes the whole gross (within the caps): net may be either sign.
    only_long = decide(pd.Series({"A": 1.05, "B": 1.01, "D": 0.98}), None, s).weights
    assert only_long.to_dict() == {"A": 0.5, "B": 0.5, "D": 0.0} and constraint_violations(only_long, s) == []


def test_threshold_long_only_and_flat_is_not_a_failure():
    s = _trend(
        selection={"kind": "threshold", "feature": "x", "long_above": 1.0},
        constraints={"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 1.0, "min_names": 1},
    )
    assert decide(pd.Series({"A": 1.1, "B": 0.5}), None, s).weights.to_dict() == {"A": 1.0, "B": 0.0}
    flat = decide(pd.Series({"A": 0.9, "B": 0.5}), None, s)
    assert (flat.weights == 0).all() and flat.note == ""


@pytest.mark.parametrize(
    "selection,why",
    [
        ({"kind": "threshold", "long_above": 1.0}, "needs feature"),
        ({"kind": "threshold", "feature": "x"}, "needs long_above, short_below or both"),
        ({"kind": "threshold", "feature": "x", "long_above": 0.9, "short_below": 1.0}, "is above long_above"),
        ({"kind": "top_k", "k": 3, "long_above": 1.0}, "does not use ['long_above']"),
    ],
)
def test_threshold_selection_errors_name_the_field(selection, why):
    with pytest.raises(ValueError, match=re.escape(why)) as err:
        _trend(selection=selection)
    assert "selection" in str(err.value)


@pytest.mark.parametrize(
    "universe,message",
    [
        (
            {"include": ["AAA", "ZZZ"]},
            "strategy 'u': field 'universe.include': ['ZZZ'] not in the symbol registry (3 symbols)",
        ),
        (
            {"exclude": ["AAB"]},
            "strategy 'u': field 'universe.exclude': ['AAB'] not in the symbol registry (3 symbols)",
        ),
        (
            {"sectors": ["Tech", "Enrgy"]},
            "strategy 'u': field 'universe.sectors': ['Enrgy'] matches no registry sector (sectors: Energy, Tech)",
        ),
        (
            {"include": ["CCC"], "sectors": ["Tech"]},
            "strategy 'u': field 'universe': include/exclude/sectors leave no symbol of the registry's 3",
        ),
    ],
)
def test_a_universe_that_names_unknown_symbols_or_sectors_or_is_empty_is_an_error(universe, message):
    from quantlab_assets.strategy_lab.core.construct import universe_filter
    from quantlab_assets.strategy_lab.core.spec import StrategyError, StrategySpec

    spec = StrategySpec.model_validate(
        {"name": "u", "universe": universe, "signal": {"kind": "feature", "feature": "f"}, "selection": {"kind": "all"}}
    )
    with pytest.raises(StrategyError) as err:
        universe_filter(["AAA", "BBB", "CCC"], {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy"}, spec)
    assert str(err.value) == message


def test_a_valid_universe_filter_keeps_its_symbols():
    from quantlab_assets.strategy_lab.core.construct import universe_filter
    from quantlab_assets.strategy_lab.core.spec import StrategySpec

    spec = StrategySpec.model_validate(
        {
            "name": "u",
            "universe": {"sectors": ["Tech"], "exclude": ["BBB"]},
            "signal": {"kind": "feature", "feature": "f"},
            "selection": {"kind": "all"},
        }
    )
    assert universe_filter(
        ["CCC", "BBB", "AAA", "DDD"], {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "DDD": "Tech"}, spec
    ) == ["AAA", "DDD"]
