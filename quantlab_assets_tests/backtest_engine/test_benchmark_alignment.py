"""Issue 22 point 2: the benchmark follows the strategy's execution convention.

On a backtest's first session the book is in cash (a decision at a close fills at the next
open), yet the equal-weight benchmark used to be credited that session's close-to-close return,
and every relative figure (excess return, information ratio, beta, alpha, capture) inherited it.
Now the benchmark has no return before the strategy's first invested session, earns open to
close on it (bought at the same open) and close to close after; relative figures start where
both sides can be invested, and agree with empyrical on the aligned series.
"""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core import tearsheet
from quantlab_assets.backtest_engine.core.kpis import kpi_table
from quantlab_assets.backtest_engine.core.store import backtest_strategy, equal_weight_benchmark
from quantlab_assets.strategy_lab.core.spec import Costs

DAYS = pd.bdate_range("2024-04-01", periods=4)


def _bars() -> pd.DataFrame:
    """Two names, four sessions; A's adjustment factor 2 (a 2:1 split later) must not matter."""
    rows = [
        # date, symbol, open, close, adj factor (adj_close = close / factor)
        (0, "A", 100.0, 101.0, 2.0),
        (0, "B", 50.0, 49.0, 1.0),
        (1, "A", 102.0, 104.0, 2.0),
        (1, "B", 48.0, 48.5, 1.0),
        (2, "A", 103.0, 99.0, 2.0),
        (2, "B", 49.0, 50.0, 1.0),
        (3, "A", 100.0, 103.0, 2.0),
        (3, "B", 51.0, 50.5, 1.0),
    ]
    return pd.DataFrame(
        [{"date": DAYS[t], "symbol": s, "open": o, "close": c, "adj_close": c / f} for t, s, o, c, f in rows]
    )


def test_benchmark_by_hand_starts_at_the_first_fill():
    bars = _bars()
    # Decided at the first close: filled at the second session's open.
    decisions = pd.DataFrame({"date": [DAYS[0]] * 2, "symbol": ["A", "B"], "weight": [0.5, 0.5]})
    out, equity = backtest_strategy(bars, decisions, DAYS[0], DAYS[-1], Costs(fee_bps=0, slippage_bps=0), 1e6)
    bench = equity.set_index("date")["benchmark_ret"]
    assert np.isnan(bench[DAYS[0]])  # the strategy could hold nothing: no benchmark return either
    assert out.equity["ret"].iloc[0] == 0.0
    # Session 2, bought at the open: mean of close / open - 1 (the split factor cancels within a day).
    assert bench[DAYS[1]] == pytest.approx(((104 / 102 - 1) + (48.5 / 48 - 1)) / 2, abs=1e-15)
    # Then close to close on adjusted closes.
    assert bench[DAYS[2]] == pytest.approx(((99 / 104 - 1) + (50 / 48.5 - 1)) / 2, abs=1e-15)
    assert bench[DAYS[3]] == pytest.approx(((103 / 99 - 1) + (50.5 / 50 - 1)) / 2, abs=1e-15)
    # An equal-weight book filled at the same open without costs earns the benchmark exactly on
    # its first day (same prices, same weights): excess 0 there.
    assert out.equity["ret"].iloc[1] == pytest.approx(bench[DAYS[1]], abs=1e-15)


def test_a_strategy_that_never_trades_has_no_benchmark():
    bars = _bars()
    empty = pd.DataFrame(columns=["date", "symbol", "weight"])
    _, equity = backtest_strategy(bars, empty, DAYS[0], DAYS[-1], Costs(), 1e6)
    assert equity["benchmark_ret"].isna().all()
    table = kpi_table(equity[["date", "ret", "turnover"]], equity.set_index("date")["benchmark_ret"])
    assert table["excess_return"].isna().all() and table["information_ratio"].isna().all()


def test_close_to_close_without_a_start_is_the_universe_return():
    bench = equal_weight_benchmark(_bars())
    assert np.isnan(bench.iloc[0])
    assert bench.iloc[1] == pytest.approx(((104 / 101 - 1) + (48.5 / 49 - 1)) / 2, abs=1e-15)


def _market(seed=3, T=300, N=12):
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2023-01-02", periods=T)
    close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.013, (T, N)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, (T, N)))
    symbols = [f"S{i:02d}" for i in range(N)]
    bars = pd.DataFrame(
        {
            "date": np.repeat(days, N),
            "symbol": np.tile(symbols, T),
            "open": open_.ravel(),
            "close": close.ravel(),
            "adj_close": close.ravel(),
        }
    )
    # Warm-up: the first decision at the 30th close (filled at the 31st open), monthly after.
    rows = []
    for t in range(29, T, 21):
        w = rng.dirichlet(np.ones(N))
        rows.append(pd.DataFrame({"date": days[t], "symbol": symbols, "weight": w}))
    return bars, pd.concat(rows, ignore_index=True), days


def test_relative_figures_start_where_both_are_invested_and_equal_empyrical():
    bars, decisions, days = _market()
    _, equity = backtest_strategy(bars, decisions, days[0], days[-1], Costs(), 1e6)
    r = equity.set_index("date")["ret"]
    b = equity.set_index("date")["benchmark_ret"]
    first = days[30]
    assert b[:first].iloc[:-1].isna().all() and b[first:].notna().all()
    # The aligned series: the sessions from the first fill on, where both sides can be invested.
    ra, ba = r[first:], b[first:]
    table = kpi_table(equity[["date", "ret", "turnover"]], b)
    last = table[(table["date"] == days[-1]) & (table["scope"] == "since_start")].iloc[0]
    assert last["information_ratio"] == pytest.approx(ep.excess_sharpe(ra, ba) * np.sqrt(252), rel=1e-12)
    assert last["excess_return"] == pytest.approx(ep.cum_returns_final(r) - ep.cum_returns_final(ba), abs=1e-14)
    # Beta, alpha and capture (the tearsheet's) on the same aligned series as empyrical's.
    assert tearsheet.beta(r, b) == pytest.approx(ep.beta(ra, ba), rel=1e-12)
    assert tearsheet.alpha(r, b) == pytest.approx(ep.alpha(ra, ba), rel=1e-12)
    assert tearsheet.capture(r, b, "up") == pytest.approx(ep.up_capture(ra, ba), rel=1e-12)
    # The warm-up sessions (strategy flat, benchmark moving) no longer count against the strategy:
    # the old close-to-close benchmark gives a different information ratio.
    old = equal_weight_benchmark(bars).reindex(r.index)
    stale = kpi_table(equity[["date", "ret", "turnover"]], old)
    assert stale.iloc[-1]["information_ratio"] != pytest.approx(last["information_ratio"], rel=1e-3)


def test_resumed_partitions_give_the_one_run_benchmark():
    """Partition by partition from the stored state (``invested_before`` from the stored history)
    equals one run over the whole range, bit for bit."""
    bars, decisions, days = _market(seed=5, T=120)
    costs = Costs()
    out, whole = backtest_strategy(bars, decisions, days[0], days[-1], costs, 1e6)
    parts, state, invested = [], None, False
    for lo, hi in [(0, 20), (20, 31), (31, 32), (32, 80), (80, 120)]:
        window = bars[(bars["date"] >= days[max(lo - 1, 0)]) & (bars["date"] <= days[hi - 1])]
        o, eq = backtest_strategy(
            window, decisions, days[lo], days[hi - 1], costs, 1e6, state, invested_before=invested
        )
        parts.append(eq)
        state = o.state_frame()
        invested = invested or bool(((eq["gross_exposure"] > 0) | (eq["turnover"] > 0)).any())
    pieced = pd.concat(parts, ignore_index=True)
    np.testing.assert_array_equal(pieced["benchmark_ret"].to_numpy(), whole["benchmark_ret"].to_numpy())


# ----------------------------------------------------------------------------- point 3


def test_since_start_figures_count_from_the_first_invested_session():
    """Issue 22 point 3: a strategy flat during its warm-up (12-1 momentum undefined) reads its
    since-start Sharpe and volatility over the sessions it held a book, as empyrical does on them."""
    from quantlab_assets.backtest_engine.core.kpis import first_invested, invested_kpi_table

    bars, decisions, days = _market(seed=9, T=260)
    _, equity = backtest_strategy(bars, decisions, days[0], days[-1], Costs(), 1e6)
    first = first_invested(equity)
    assert first == days[30]  # decided at the 30th close, filled at the 31st open
    daily = equity[["date", "ret", "turnover"]]
    table = invested_kpi_table(daily, equity.set_index("date")["benchmark_ret"])
    since = table[table["scope"] == "since_start"].set_index("date")
    r = equity.set_index("date")["ret"][first:]
    last = since.loc[days[-1]]
    assert last["sessions"] == len(r) == 230
    assert last["sharpe_ratio"] == pytest.approx(ep.sharpe_ratio(r), rel=1e-12)
    assert last["annual_volatility"] == pytest.approx(ep.annual_volatility(r), rel=1e-12)
    assert last["cagr"] == pytest.approx(ep.cagr(r), rel=1e-12)
    # The warm-up's zero returns would dilute both: the old figures differ.
    whole = kpi_table(daily, equity.set_index("date")["benchmark_ret"])
    old = whole[(whole["scope"] == "since_start") & (whole["date"] == days[-1])].iloc[0]
    assert old["annual_volatility"] < last["annual_volatility"]
    # Before the first invested session: no since-start figure, 0 sessions (not a flat "0.00%").
    warm = since.loc[: days[29]]
    assert (warm["sessions"] == 0).all() and warm["sharpe_ratio"].isna().all() and warm["total_return"].isna().all()
    # Trailing rows are kpi_table's own.
    trail = table[table["scope"] != "since_start"].reset_index(drop=True)
    pd.testing.assert_frame_equal(trail, whole[whole["scope"] != "since_start"].reset_index(drop=True))
    # A strategy invested from its first session: the same table as kpi_table.
    rest = equity[equity["date"] >= first]
    pd.testing.assert_frame_equal(
        invested_kpi_table(rest[["date", "ret", "turnover"]]), kpi_table(rest[["date", "ret", "turnover"]])
    )
    # Never traded: every since-start row is empty.
    flat = daily.assign(turnover=0.0)
    assert invested_kpi_table(flat).query("scope == 'since_start'")["sessions"].eq(0).all()
