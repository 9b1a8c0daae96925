"""The strategy leaderboard: stored KPIs of the last date, yearly returns, correlation, approval rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core.leaderboard import equity_curves_png, leaderboard, leaderboard_markdown
from quantlab_assets.backtest_engine.core.kpis import SINCE_START, kpi_table
from quantlab_assets.common.calendar import trading_days


def _inputs():
    rng = np.random.default_rng(7)
    days = trading_days("2023-01-03", "2024-06-28")
    equity, kpis, approvals = [], [], []
    for name, drift in (("alpha", 0.0008), ("beta", 0.0)):
        ret = rng.normal(drift, 0.01, len(days))
        frame = pd.DataFrame({"date": days, "ret": ret})
        equity.append(frame.assign(strategy=name))
        kpis.append(kpi_table(frame).assign(strategy=name))
        status = np.where(np.arange(len(days)) % 4 == 0, "rejected", "approved") if name == "alpha" else "approved"
        approvals.append(pd.DataFrame({"date": days, "strategy": name, "status": status}))
    return (
        pd.concat(kpis, ignore_index=True),
        pd.concat(equity, ignore_index=True),
        pd.concat(approvals, ignore_index=True),
        days,
    )


def test_leaderboard_figures():
    kpis, equity, approvals, days = _inputs()
    as_of = days[-20]
    board = leaderboard(kpis, equity, approvals, as_of)
    row = board.table.set_index("strategy").loc["alpha"]
    stored = kpis[(kpis["strategy"] == "alpha") & (kpis["date"] == as_of)].set_index("scope")
    assert row["sharpe_ratio"] == stored.loc[SINCE_START, "sharpe_ratio"]
    assert row["t252_max_drawdown"] == stored.loc["trailing_252", "max_drawdown"]
    kept = days[days <= as_of]
    assert row["approval_rate"] == pytest.approx(1 - np.ceil(len(kept) / 4) / len(kept))
    assert board.table.set_index("strategy").loc["beta", "approval_rate"] == 1.0
    r = equity.pivot(index="date", columns="strategy", values="ret").loc[:as_of]
    assert board.correlation.loc["alpha", "beta"] == pytest.approx(r["alpha"].corr(r["beta"]), abs=1e-15)
    y2023 = (1 + r.loc["2023", "beta"]).prod() - 1
    assert board.yearly.loc["beta", "2023"] == pytest.approx(y2023, abs=1e-14)
    assert list(board.table["strategy"]) == sorted(
        board.table["strategy"], key=lambda s: -board.table.set_index("strategy").loc[s, "sharpe_ratio"]
    )
    md = leaderboard_markdown(board, "chart.png")
    for part in ("Since start", "Trailing 252", "Yearly returns", "Correlation", "![equity curves](chart.png)"):
        assert part in md
    assert equity_curves_png(board)[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_ignores_rows_after_as_of():
    kpis, equity, approvals, days = _inputs()
    as_of = days[100]
    base = leaderboard(kpis, equity, approvals, as_of)
    later = equity["date"] > as_of
    tampered = equity.copy()
    tampered.loc[later, "ret"] = 0.5
    again = leaderboard(
        kpis, tampered, approvals.assign(status="rejected").where(approvals["date"] > as_of, approvals), as_of
    )
    pd.testing.assert_frame_equal(base.table, again.table)
    pd.testing.assert_frame_equal(base.correlation, again.correlation)
