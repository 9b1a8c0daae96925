"""The backtest gate's rules on hand-made stored rows (the Dagster checks only adapt these)."""

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.gate import accounting_identity, kpis_finite, no_trade_before_decision
from quantlab_assets.backtest_engine.core.kpis import SINCE_START

D1, D2 = pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-02")


def test_accounting_identity_names_the_first_breaking_session():
    positions = pd.DataFrame({"date": [D1, D2], "symbol": ["AAA", "AAA"], "shares": [10.0, 10.0], "price": [5.0, 6.0]})
    # 2024-04-01: 50 + 50 = 100 holds; 2024-04-02: 50 + 60 = 110, stored 111 breaks it.
    equity = pd.DataFrame({"date": [D1, D2], "cash": [50.0, 50.0], "equity": [100.0, 111.0]})
    result = accounting_identity(equity, positions)
    assert not result.passed and result.blocking
    assert result.description == "1 sessions break it, first 2024-04-02"
    assert result.offending["cash_plus_positions"].tolist() == [110.0]
    assert accounting_identity(equity.assign(equity=[100.0, 110.0]), positions).passed


def test_a_fill_on_its_decision_date_fails():
    trades = pd.DataFrame({"date": [D2, D1], "decision_date": [D1, D1], "symbol": ["AAA", "BBB"]})
    result = no_trade_before_decision(trades)
    assert not result.passed and result.figures == {"fills": 2.0}
    assert result.offending["symbol"].tolist() == ["BBB"]
    assert result.description == "1 fills on or before their decision date, first 2024-04-01 (BBB, decided 2024-04-01)"
    assert no_trade_before_decision(trades.iloc[:1]).passed


def test_kpis_finite_from_two_sessions_on():
    row = {
        "scope": SINCE_START,
        "total_return": 0.1,
        "cagr": 0.2,
        "annual_volatility": 0.3,
        "max_drawdown": -0.05,
        "turnover": 0.5,
    }
    one_session = pd.DataFrame([{**row, "sessions": 1, "cagr": np.inf}])
    assert kpis_finite(one_session).passed  # a single session's annualized figures are not judged
    two = pd.DataFrame([{**row, "sessions": 2, "cagr": np.inf}])
    result = kpis_finite(two)
    assert not result.passed and result.description == "non-finite values in ['cagr']"
