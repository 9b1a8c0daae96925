"""Strategy files: the shipped examples load; every bad file names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantlab_assets.feature_store.core.features import load_preset
from quantlab_assets.feature_store.core.sets import all_feature_names, load_feature_sets
from quantlab_assets.strategy_lab.core.spec import StrategyError, discover, load_strategy

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
GOOD = """name: {name}
signal: {{kind: feature, feature: mom_12_1}}
selection: {{kind: top_k, k: 10}}
"""


def test_shipped_examples_are_valid():
    # Strategies read features from any feature set: the default preset and the packaged sets.
    specs, errors = discover(STRATEGIES, known_features=all_feature_names(load_feature_sets(load_preset())))
    assert errors == {}
    assert {s.name for s in specs} >= {"momentum_topk", "short_term_reversal", "low_volatility"}
    kinds = {s.name: (s.selection.kind, s.weighting.kind) for s in specs}
    assert kinds["short_term_reversal"] == ("long_short_quantile", "equal")
    assert kinds["low_volatility"] == ("top_k", "inverse_vol")


@pytest.mark.parametrize(
    "body,field,why",
    [
        ("name: bad\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k}\n", "selection", "needs k"),
        ("name: bad\nsignal: {kind: feature}\nselection: {kind: top_k, k: 5}\n", "signal", "needs the field 'feature'"),
        (
            "name: bad\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, k: 5}\nleverage: 3\n",
            "leverage",
            "Extra inputs are not permitted",
        ),
        (
            "name: bad\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, k: 5}\n"
            "constraints: {max_weight: 0.1, min_names: 5}\n",
            "constraints",
            "cannot be met",
        ),
        (
            "name: bad\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, k: 5}\n"
            "costs: {fee_bps: -1}\n",
            "costs.fee_bps",
            "greater than or equal to 0",
        ),
        ("name: bad\nsignal: {kind: oracle}\nselection: {kind: top_k, k: 5}\n", "signal.kind", "Input should be"),
    ],
)
def test_invalid_files_name_file_and_field(tmp_path, body, field, why):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(StrategyError) as err:
        load_strategy(path)
    message = str(err.value)
    assert str(path) in message and field in message and why in message


def test_malformed_yaml_and_wrong_name_and_unknown_feature(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nsignal: [unclosed\n")
    with pytest.raises(StrategyError, match=r"broken\.yaml: not valid YAML"):
        load_strategy(broken)
    renamed = tmp_path / "other.yaml"
    renamed.write_text(GOOD.format(name="momentum"))
    with pytest.raises(StrategyError, match=r"field 'name': 'momentum' must equal the file name 'other'"):
        load_strategy(renamed)
    unknown = tmp_path / "uses_unknown.yaml"
    unknown.write_text(GOOD.format(name="uses_unknown").replace("mom_12_1", "alpha_42"))
    with pytest.raises(StrategyError, match=r"unknown feature\(s\) \['alpha_42'\]"):
        load_strategy(unknown, known_features={"mom_12_1"})


def test_one_bad_file_does_not_hide_the_others(tmp_path):
    (tmp_path / "good_one.yaml").write_text(GOOD.format(name="good_one"))
    (tmp_path / "bad_one.yaml").write_text("name: bad_one\n")
    specs, errors = discover(tmp_path)
    assert [s.name for s in specs] == ["good_one"]
    assert (
        list(errors) == [str(tmp_path / "bad_one.yaml")] and "field 'signal'" in errors[str(tmp_path / "bad_one.yaml")]
    )


def test_a_model_signals_horizon_is_its_labels():
    from quantlab_assets.strategy_lab.core.spec import RidgeModel

    horizons = {label: RidgeModel(features=("ret_5",), label=label).horizon for label in ("fwd_ret_1", "fwd_ret_20")}
    assert horizons == {"fwd_ret_1": 1, "fwd_ret_20": 20} and RidgeModel(features=("ret_5",)).horizon == 5
