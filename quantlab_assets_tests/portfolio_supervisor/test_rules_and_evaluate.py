"""Risk rules and decisions by hand: every reason carries the measured value and the limit."""

from __future__ import annotations

import pandas as pd
import pytest

from quantlab_assets.portfolio_supervisor.core.evaluate import (
    APPROVED,
    NEEDS_REVIEW,
    REJECTED,
    approved_book,
    book_measures,
    evaluate,
)
from quantlab_assets.portfolio_supervisor.core.rules import RiskLimits, RulesError, load_rules

LIMITS = RiskLimits(
    max_weight=0.2,
    max_gross=1.0,
    max_net=1.0,
    min_net=0.0,
    min_names=5,
    max_hhi=0.25,
    max_turnover=0.5,
    max_drawdown=0.1,
    min_sharpe=0.0,
    min_history_sessions=20,
)


def book(**w) -> pd.Series:
    return pd.Series(w, dtype=float)


def test_measures_by_hand():
    m = book_measures(book(A=0.5, B=0.25, C=0.25, D=0.0), book(A=0.25, B=0.25, C=0.25, D=0.25))
    assert m["gross"] == 1.0 and m["net"] == 1.0 and m["names"] == 3
    assert m["hhi"] == 0.5**2 + 0.25**2 + 0.25**2
    assert m["turnover"] == (0.25 + 0.25) / 2


def test_equal_book_is_approved():
    v = evaluate(book(A=0.2, B=0.2, C=0.2, D=0.2, E=0.2), None, True, LIMITS)
    assert v.status == APPROVED and v.reasons == [] and v.flags == []


def test_each_hard_limit_rejects_with_value_and_limit():
    v = evaluate(book(A=0.4, B=0.2, C=0.2, D=0.2), None, True, LIMITS)
    assert v.status == REJECTED
    assert "A weight 40.00% exceeds the single-name limit 20.00%" in v.reasons
    assert "4 names held, fewer than the minimum 5" in v.reasons
    assert any(r.startswith("concentration HHI 0.280") for r in v.reasons)
    assert v.flagged_symbols == ["A"] and "min_names" in v.flags
    v = evaluate(book(A=0.2, B=0.2, C=0.2, D=0.2, E=0.2, F=0.2), None, True, LIMITS)
    assert "gross exposure 120.00% exceeds 100.00%" in v.reasons
    v = evaluate(book(A=0.2, B=0.2, C=0.2, D=0.2, E=0.2), book(F=0.2, G=0.2, H=0.2, I=0.2, J=0.2), True, LIMITS)
    assert v.reasons == ["turnover 100.00% of this rebalance exceeds 50.00%"]
    # Turnover is a rule of rebalances only; a carried book is not re-judged on it.
    assert evaluate(book(A=0.2, B=0.2, C=0.2, D=0.2, E=0.2), book(F=1.0), False, LIMITS).status == APPROVED


def test_performance_limits_need_review_only_with_enough_history():
    equal = book(A=0.2, B=0.2, C=0.2, D=0.2, E=0.2)
    perf = {"scope": "since_start", "sessions": 30, "max_drawdown": -0.15, "sharpe_ratio": -0.4}
    v = evaluate(equal, None, False, LIMITS, perf)
    assert v.status == NEEDS_REVIEW
    assert v.reasons == [
        "max drawdown 15.00% (since_start, 30 sessions) exceeds 10.00%",
        "Sharpe -0.40 (since_start, 30 sessions) is below 0.00",
    ]
    assert evaluate(equal, None, False, LIMITS, {**perf, "sessions": 10}).status == APPROVED


def test_approved_book_policy():
    targets = book(A=0.5, B=0.5)
    held = book(A=0.1, B=0.9)
    tradable, source = approved_book(targets, APPROVED, held, ["B"])
    assert tradable.to_dict() == {"A": 0.5, "B": 0.0} and "without flagged B" in source
    tradable, source = approved_book(targets, REJECTED, held, [])
    assert tradable.to_dict() == {"A": 0.1, "B": 0.9} and source == "held last approved book"
    tradable, source = approved_book(targets, NEEDS_REVIEW, None, [])
    assert (tradable == 0).all() and source.startswith("flat")


def test_packaged_rules_and_overrides(tmp_path):
    rules = load_rules()
    assert rules.for_strategy("short_term_reversal").max_turnover == 0.5
    assert rules.for_strategy("momentum_topk").max_turnover == rules.defaults.max_turnover
    bad = tmp_path / "rules.yaml"
    bad.write_text("defaults: {max_weight: 2}\n")
    with pytest.raises(RulesError, match=r"rules\.yaml: field 'defaults\.max_weight'"):
        load_rules(bad)
    bad.write_text("strategies: {momentum_topk: {min_net: 0.5, max_net: 0.2}}\n")
    with pytest.raises(RulesError, match="min_net 0.5 is above max_net 0.2"):
        load_rules(bad)
    bad.write_text("defaults: {max_leverage: 2}\n")
    with pytest.raises(RulesError, match="max_leverage"):
        load_rules(bad)


def test_an_override_for_an_unknown_strategy_names_it_and_the_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("strategies:\n  momentum_top_k: {max_turnover: 0.5}\n  momentum_topk: {max_turnover: 0.6}\n")
    with pytest.raises(RulesError) as err:
        load_rules(path, known_strategies={"momentum_topk", "low_volatility"})
    assert str(err.value) == (
        f"{path}: field 'strategies': no strategy named 'momentum_top_k' (strategies: low_volatility, momentum_topk)"
    )
    # Without the list of strategies (a unit test of the limits) the names are not checked.
    assert load_rules(path).for_strategy("momentum_topk").max_turnover == 0.6


def test_the_supervisor_resource_checks_overrides_against_the_strategy_files(tmp_path, monkeypatch):
    from quantlab_assets.portfolio_supervisor.resources import SupervisorResource

    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "alpha.yaml").write_text("name: alpha\n")  # invalid, but it exists
    monkeypatch.setenv("QUANTLAB_STRATEGIES", str(strategies))
    rules = tmp_path / "rules.yaml"
    rules.write_text("strategies: {alpha: {max_turnover: 0.5}}\n")
    assert SupervisorResource(rules_file=str(rules)).rules().for_strategy("alpha").max_turnover == 0.5
    rules.write_text("strategies: {alpah: {max_turnover: 0.5}}\n")
    with pytest.raises(
        RulesError, match=r"rules\.yaml: field 'strategies': no strategy named 'alpah' \(strategies: alpha\)"
    ):
        SupervisorResource(rules_file=str(rules)).rules()
