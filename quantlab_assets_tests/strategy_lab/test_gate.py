"""The targets gate's rules on hand-made stored targets (the Dagster checks only adapt these)."""

from pathlib import Path

import numpy as np
import pandas as pd

from quantlab_assets.strategy_lab.core.gate import targets_gate
from quantlab_assets.strategy_lab.core.spec import load_strategy

SPEC = load_strategy(Path(__file__).resolve().parents[2] / "strategies" / "momentum_topk.yaml")
NAMES = [f"S{i}" for i in range(10)]
D1, D2 = pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-02")


def _book(day, weights, rebalance=True, symbols=NAMES):
    return pd.DataFrame(
        {
            "date": day,
            "strategy": SPEC.name,
            "symbol": symbols[: len(weights)],
            "score": 0.0,
            "weight": weights,
            "rebalance": rebalance,
        }
    )


def _verdicts(stored):
    return {r.name: r for r in targets_gate(stored, SPEC, NAMES)}


def test_a_valid_book_passes_every_rule():
    assert all(r.passed for r in _verdicts(_book(D1, [0.1] * 10)).values())


def test_each_rule_names_what_breaks_it():
    # 2024-04-02 holds 0.3 in one name (max_weight 0.12): a violation only on a decision day.
    stored = pd.concat([_book(D1, [0.1] * 10), _book(D2, [0.3] + [0.1] * 7)])
    v = _verdicts(stored)
    assert not v["constraint_violations_zero"].passed
    assert v["constraint_violations_zero"].figures["violations"] >= 1
    assert "2024-04-02" in v["constraint_violations_zero"].description
    assert _verdicts(pd.concat([_book(D1, [0.1] * 10), _book(D2, [0.3] + [0.1] * 7, rebalance=False)]))[
        "constraint_violations_zero"
    ].passed  # a held book between decisions is not judged

    odd = _book(D1, [0.1] * 10).assign(symbol=NAMES[:9] + ["ZZZ"])
    unknown = _verdicts(odd)["symbols_in_registry"]
    assert unknown.description == "unknown symbols ['ZZZ'] on 1 rows, e.g. ZZZ 2024-04-01"
    assert unknown.offending[["date", "symbol"]].values.tolist() == [[D1, "ZZZ"]]

    nan = _book(D1, [np.nan] + [0.1] * 9)
    assert _verdicts(nan)["weights_finite"].description == "1 non-finite weights, e.g. S0 2024-04-01"

    twice = pd.concat([_book(D1, [0.1] * 10), _book(D1, [0.1])])
    result = _verdicts(twice)["one_row_per_symbol_and_day"]
    assert not result.passed and result.description == "1 duplicate rows, e.g. S0 2024-04-01"
    assert len(result.offending) == 2
