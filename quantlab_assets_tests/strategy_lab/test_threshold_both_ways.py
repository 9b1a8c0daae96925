"""Threshold selection in both directions (trend and mean reversion), and the schema rule that a
field a kind does not use is refused with a message naming it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.strategy_lab.core.construct import constraint_violations, decide
from quantlab_assets.strategy_lab.core.spec import StrategyError, StrategySpec, load_strategy
from quantlab_assets.strategy_lab.core.targets import compute_targets

RSI_RULE = {"kind": "threshold", "feature": "rsi_14", "long_below": 30.0, "short_above": 70.0}
BOOK = {"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 1}


def _spec(**over) -> StrategySpec:
    base = {
        "name": "r",
        "signal": {"kind": "feature", "feature": "rsi_14"},
        "selection": RSI_RULE,
        "rebalance": {"frequency": "daily"},
        "constraints": BOOK,
    }
    base.update(over)
    return StrategySpec.model_validate(base)


def test_rsi_mean_reversion_by_hand_on_one_name():
    days = trading_days("2024-04-01", "2024-04-08")
    rsi = [25.0, 30.0, 50.0, 71.0, 70.0, np.nan]
    feats = pd.DataFrame({"date": days, "symbol": "GOOG", "rsi_14": rsi})
    out = compute_targets(feats, _spec(), ["GOOG"], days[0], days[-1])
    # long below 30 (strictly), flat on 30 and 50 and 70, short above 70, flat without a value
    assert out.targets["weight"].tolist() == [1.0, 0.0, 0.0, -1.0, 0.0, 0.0]
    # score: higher = more attractive, so a reversion rule scores the negated value
    assert out.targets["score"].tolist()[:5] == [-25.0, -30.0, -50.0, -71.0, -70.0]
    assert out.violations == []


def test_reversion_splits_gross_and_scores_low_values_higher():
    s = _spec(
        weighting={"kind": "score"},
        constraints={"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 1},
    )
    values = pd.Series({"A": 10.0, "B": 20.0, "C": 80.0, "D": 50.0})
    w = decide(-values, None, s, values=values).weights
    assert w["D"] == 0.0 and w["C"] == -0.5 and np.isclose(w["A"] + w["B"], 0.5)
    assert w["A"] > w["B"] > 0  # the lower RSI is the more attractive long
    assert constraint_violations(w, s) == []


def test_long_only_reversion_is_long_only():
    s = _spec(
        selection={"kind": "threshold", "feature": "rsi_14", "long_below": 30.0},
        constraints={"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 1.0, "min_names": 1},
    )
    assert s.selection.long_only and s.selection.reversion
    values = pd.Series({"A": 20.0, "B": 90.0})
    assert decide(-values, None, s, values=values).weights.to_dict() == {"A": 1.0, "B": 0.0}


def test_trend_rule_is_unchanged():
    s = _spec(
        signal={"kind": "feature", "feature": "x"},
        selection={"kind": "threshold", "feature": "x", "long_above": 1.0, "short_below": 0.97},
    )
    assert not s.selection.reversion and not s.selection.long_only
    values = pd.Series({"A": 1.05, "B": 0.9, "C": 0.98})
    assert decide(values, None, s).weights.to_dict() == {"A": 0.5, "B": -0.5, "C": 0.0}


@pytest.mark.parametrize(
    "selection,why",
    [
        ({"kind": "threshold", "feature": "rsi_14", "long_below": 70.0, "short_above": 30.0}, "70.0 is above"),
        ({"kind": "threshold", "feature": "rsi_14", "long_above": 70.0, "short_above": 80.0}, "overlap"),
        ({"kind": "threshold", "feature": "rsi_14", "long_below": 30.0, "short_below": 20.0}, "overlap"),
        ({"kind": "threshold", "feature": "rsi_14", "long_below": 30.0, "long_above": 70.0}, "one side twice"),
        ({"kind": "threshold", "feature": "rsi_14"}, "long_below, short_above or both (mean reversion)"),
        ({"kind": "top_k", "k": 3, "quantile": 0.2}, "selection 'top_k' does not use ['quantile']"),
        ({"kind": "long_short_quantile", "quantile": 0.2, "k": 3}, "does not use ['k']"),
        ({"kind": "all", "long_below": 3.0}, "selection 'all' does not use ['long_below']"),
    ],
)
def test_selection_fields_are_refused_by_name(selection, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        _spec(selection=selection, constraints={**BOOK, "max_weight": 0.5, "min_names": 1})


def test_signal_direction_under_threshold_is_refused_naming_it():
    with pytest.raises(ValueError, match=re.escape("signal.direction: selection 'threshold' does not use it")):
        _spec(signal={"kind": "feature", "feature": "rsi_14", "direction": -1})


def test_a_signal_feature_the_threshold_does_not_read_is_refused():
    with pytest.raises(ValueError, match="would not be used"):
        _spec(signal={"kind": "feature", "feature": "ret_5"})
    with pytest.raises(ValueError, match="would not be used"):
        _spec(signal={"kind": "blend", "blend": [{"feature": "rsi_14"}]})


def test_vol_feature_without_inverse_vol_is_refused():
    with pytest.raises(ValueError, match=re.escape("weighting 'equal' does not use ['vol_feature']")):
        _spec(weighting={"kind": "equal", "vol_feature": "vol_20"})


def test_the_refusal_names_the_file_and_field(tmp_path):
    path = tmp_path / "rsi_bad.yaml"
    path.write_text(
        "name: rsi_bad\nsignal: {kind: feature, feature: rsi_14, direction: -1}\n"
        "selection: {kind: threshold, feature: rsi_14, long_above: 30.0}\n"
        "constraints: {max_weight: 1.0, min_names: 1}\n"
    )
    with pytest.raises(StrategyError) as err:
        load_strategy(path)
    assert str(path) in str(err.value) and "signal.direction" in str(err.value)
