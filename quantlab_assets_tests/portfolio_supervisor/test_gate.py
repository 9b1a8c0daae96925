"""The supervisor gate's rules on hand-made stored rows (the Dagster checks only adapt these)."""

import pandas as pd

from quantlab_assets.portfolio_supervisor.core.gate import approved_targets_within_rules, every_rejection_has_reason
from quantlab_assets.portfolio_supervisor.core.rules import load_rules

D1, D2 = pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-02")


def test_a_rejection_without_reason_or_override_fails():
    approvals = pd.DataFrame(
        {
            "date": [D1, D2],
            "status": ["rejected", "needs_review"],
            "reasons": ["turnover 50% exceeds 30%", None],
            "override_reason": [None, None],
        }
    )
    result = every_rejection_has_reason(approvals)
    assert not result.passed and result.description == "1 non-approved days without a reason, e.g. 2024-04-02"
    overridden = approvals.assign(override_reason=[None, "known event"])
    assert every_rejection_has_reason(overridden).passed


def test_a_tradable_book_over_a_hard_limit_fails():
    limits = load_rules().for_strategy("momentum_topk")  # packaged defaults: max_weight 0.15, min_names 8
    ten = [f"S{i}" for i in range(10)]
    books = pd.concat(
        [
            pd.DataFrame({"date": D1, "symbol": ten, "weight": 0.1}),
            pd.DataFrame({"date": D2, "symbol": ten[:8], "weight": [0.3] + [0.1] * 7}),
        ]
    )
    result = approved_targets_within_rules(books, limits)
    assert not result.passed and result.figures == {"breaking_days": 1.0}
    assert result.offending["date"].tolist() == [D2] and "2024-04-02" in result.description
    assert result.offending["symbols"].tolist() == ["S0"] and "S0 weight 30.00%" in result.description
    assert approved_targets_within_rules(books[books["date"] == D1], limits).passed
