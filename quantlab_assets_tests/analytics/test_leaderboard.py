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


def test_flat_books_are_no_approved_days_and_rejected_strategies_are_marked():
    """Issue 22 points 4 and 5: a strategy that never held anything shows no approval rate and says
    so; one the supervisor rejects every day is marked beside its Sharpe; a flat day of a trading
    strategy is not an approved trading day."""
    days = trading_days("2024-01-02", "2024-03-28")
    n = len(days)
    rng = np.random.default_rng(3)
    frames = {
        # flat for the first 10 sessions (warm-up), then trading, all approved
        "warm": (np.r_[np.zeros(10), np.full(n - 10, 0.9)], ["approved"] * n),
        # a book the supervisor rejects every day (gross 2.0 over a 1.05 limit)
        "levered": (np.full(n, 2.0), ["rejected"] * n),
        # never held anything: "approved" by a supervisor that sees nothing wrong with cash
        "empty": (np.zeros(n), ["approved"] * n),
    }
    equity, kpis, approvals = [], [], []
    for name, (gross, status) in frames.items():
        ret = np.where(gross > 0, rng.normal(0.001, 0.01, n), 0.0)
        frame = pd.DataFrame({"date": days, "ret": ret, "gross_exposure": gross})
        equity.append(frame.assign(strategy=name))
        kpis.append(kpi_table(frame[["date", "ret"]]).assign(strategy=name))
        approvals.append(pd.DataFrame({"date": days, "strategy": name, "status": status}))
    board = leaderboard(
        pd.concat(kpis, ignore_index=True),
        pd.concat(equity, ignore_index=True),
        pd.concat(approvals, ignore_index=True),
        days[-1],
    )
    table = board.table.set_index("strategy")
    assert np.isnan(table.loc["empty", "approval_rate"]) and table.loc["empty", "approval_sessions"] == 0
    assert table.loc["empty", "flag"] == "EMPTY BOOK: held nothing"
    assert table.loc["levered", "approval_rate"] == 0.0 and table.loc["levered", "flag"] == "REJECTED: every session"
    assert table.loc["warm", "approval_rate"] == 1.0 and table.loc["warm", "approval_sessions"] == n - 10
    # the since-start window's length beside `since`: the 10 warm-up sessions are not in it
    assert table.loc["warm", "since"] == days[10] and table.loc["warm", "sessions"] == n - 10
    assert table.loc["empty", "sessions"] == 0 and table.loc["levered", "sessions"] == n
    assert table.loc["warm", "flag"] == ""
    md = leaderboard_markdown(board, None)
    header = next(line for line in md.splitlines() if line.startswith("| strategy"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[:4] == ["strategy", "sharpe_ratio", "approval_rate", "flag"], cells
    assert "REJECTED: every session" in md and "EMPTY BOOK: held nothing" in md


def test_a_rejected_rebalance_while_still_flat_counts_against_the_approval_rate():
    """A strategy's first book is judged on the session it is decided, while the account is still
    in cash (it fills at the next open). Rejecting that book is a rejection the reader must see,
    not a flat day left out; approving a flat book while flat still counts for nothing."""
    days = trading_days("2024-01-02", "2024-02-29")
    n = len(days)
    # held from session 6 on; the book judged on session 5 (gross 1.0) was rejected, then approved
    held = np.r_[np.zeros(6), np.ones(n - 6)]
    judged = np.r_[np.zeros(5), np.ones(n - 5)]
    status = ["approved"] * 5 + ["rejected"] + ["approved"] * (n - 6)
    frame = pd.DataFrame({"date": days, "ret": np.where(held > 0, 0.001, 0.0), "gross_exposure": held})
    board = leaderboard(
        kpi_table(frame[["date", "ret"]]).assign(strategy="s"),
        frame.assign(strategy="s"),
        pd.DataFrame({"date": days, "strategy": "s", "status": status, "gross": judged}),
        days[-1],
    )
    row = board.table.set_index("strategy").loc["s"]
    # n - 5 sessions had a book at stake (the rejected one and the n - 6 held ones); 1 was rejected
    assert row["approval_sessions"] == n - 5
    assert row["approval_rate"] == pytest.approx((n - 6) / (n - 5))


def test_strategies_are_compared_on_a_common_window():
    """Issue 22 point 3: each strategy shows the session its since-start figures count from, and a
    section compares every strategy over the same sessions (from the latest first invested one)."""
    import empyrical as ep

    days = trading_days("2024-01-02", "2024-06-28")
    n = len(days)
    rng = np.random.default_rng(11)
    starts = {"early": 0, "late": 40}
    equity, kpis, approvals = [], [], []
    for name, k in starts.items():
        gross = np.r_[np.zeros(k), np.ones(n - k)]
        ret = np.where(gross > 0, rng.normal(0.0008, 0.01, n), 0.0)
        frame = pd.DataFrame({"date": days, "ret": ret, "gross_exposure": gross})
        equity.append(frame.assign(strategy=name))
        kpis.append(kpi_table(frame[["date", "ret"]]).assign(strategy=name))
        approvals.append(pd.DataFrame({"date": days, "strategy": name, "status": "approved"}))
    eq = pd.concat(equity, ignore_index=True)
    board = leaderboard(pd.concat(kpis), eq, pd.concat(approvals), days[-1])
    table = board.table.set_index("strategy")
    assert table.loc["early", "since"] == days[0] and table.loc["late", "since"] == days[40]
    assert board.common_from == days[40]
    common = board.common.set_index("strategy")
    for name in starts:
        r = eq[(eq["strategy"] == name) & (eq["date"] >= days[40])].set_index("date")["ret"]
        assert common.loc[name, "sessions"] == n - 40
        assert common.loc[name, "sharpe_ratio"] == pytest.approx(ep.sharpe_ratio(r), rel=1e-12)
        assert common.loc[name, "total_return"] == pytest.approx(ep.cum_returns_final(r), rel=1e-12)
        assert common.loc[name, "max_drawdown"] == pytest.approx(ep.max_drawdown(r), rel=1e-12)
    md = leaderboard_markdown(board, None)
    assert f"## Common window: from {days[40].date()}" in md
