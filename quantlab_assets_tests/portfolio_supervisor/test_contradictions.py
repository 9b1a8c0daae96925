"""Issue 22 point 5: a strategy the supervisor can never approve is said at load, naming both files
and both fields, on the ``strategy_files`` asset (and in ``quantlab backtest``, research tests)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from quantlab_assets.portfolio_supervisor.core.rules import DEFAULT_RULES_FILE, contradictions, load_rules
from quantlab_assets.strategy_lab.core.spec import StrategySpec, load_strategy

ROOT = Path(__file__).resolve().parents[2]
LEVERED = """name: levered_ls
signal: {kind: feature, feature: ret_5}
selection: {kind: long_short_quantile, quantile: 0.2}
constraints: {max_weight: 0.2, gross_exposure: 2.0, net_exposure: 0.0, min_names: 5}
"""


def _spec(**constraints) -> StrategySpec:
    return StrategySpec(
        name="topk",
        signal={"kind": "feature", "feature": "mom_12_1"},
        selection={"kind": "top_k", "k": 30},
        constraints={"max_weight": 0.1, "gross_exposure": 1.0, "net_exposure": 1.0, "min_names": 5, **constraints},
    )


def test_gross_exposure_above_the_limit_names_both_files_and_fields(tmp_path):
    path = tmp_path / "levered_ls.yaml"
    path.write_text(LEVERED)
    rules = load_rules(None)
    (message,) = contradictions(load_strategy(path), rules, path, DEFAULT_RULES_FILE)
    assert message == (
        f"{path}: field 'constraints.gross_exposure' = 2 and {DEFAULT_RULES_FILE}: field 'defaults.max_gross' = 1.05: "
        "gross above; the supervisor rejects every invested day"
    )


def test_limits_no_book_can_meet(tmp_path):
    rules_file = tmp_path / "risk_rules.yaml"
    rules_file.write_text("strategies:\n  topk:\n    max_weight: 0.01\n    min_names: 50\n")
    rules = load_rules(rules_file)
    found = contradictions(_spec(), rules, "topk.yaml", rules_file, universe_size=30)
    text = "\n".join(found)
    # 30 names at gross 1.0 put at least 3.33% in one name: max_weight 0.01 can never pass.
    assert (
        f"topk.yaml: field 'selection.k' = 30 and {rules_file}: field 'strategies.topk.max_weight' = 0.01: "
        "30 names at gross 1 hold at least 3.33% in one name" in text
    )
    assert "field 'strategies.topk.min_names' = 50: at most 30 names are held" in text
    assert "universe (names in the symbol registry)' = 30" in text
    # HHI 1/30 = 0.033 is within the default 0.15: not reported.
    assert "max_hhi" not in text


@pytest.mark.parametrize("gross", [1.0, 0.5])
def test_books_within_the_limits_are_not_reported(gross):
    spec = _spec(net_exposure=gross, gross_exposure=gross)
    assert contradictions(spec, load_rules(None), "s.yaml", "r.yaml", universe_size=50) == []


def test_the_shipped_strategies_meet_the_shipped_rules():
    rules = load_rules(None)
    for path in sorted((ROOT / "strategies").glob("*.yaml")):
        assert contradictions(load_strategy(path), rules, path, DEFAULT_RULES_FILE, universe_size=50) == [], path


def test_strategy_files_asset_warns_naming_both_files(lab_env, tmp_path, monkeypatch):
    from quantlab_assets.portfolio_supervisor.resources import strategy_conflicts
    from quantlab_assets.strategy_lab.assets import build_strategy_files_asset, load_strategy_specs

    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "momentum_topk.yaml").write_text((ROOT / "strategies" / "momentum_topk.yaml").read_text())
    (folder / "levered_ls.yaml").write_text(LEVERED)
    monkeypatch.setenv("QUANTLAB_STRATEGIES", str(folder))
    known = {"mom_12_1", "ret_5"}
    specs, errors = load_strategy_specs(known)
    assert not errors
    asset = build_strategy_files_asset(specs, errors, known, strategy_conflicts)
    # At load: the asset's description says it.
    expected = (
        f"{folder / 'levered_ls.yaml'}: field 'constraints.gross_exposure' = 2 and {DEFAULT_RULES_FILE}: "
        "field 'defaults.max_gross' = 1.05"
    )
    assert expected in asset.specs_by_key[dg.AssetKey("strategy_files")].description
    result = dg.materialize([asset], raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["all_files_valid"].passed
    warn = checks["supervisor_can_approve"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN and expected in warn.description
    assert "momentum_topk" not in warn.description
