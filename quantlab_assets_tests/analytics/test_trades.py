"""Round trips and holdings (issue 22 point 6): a hand-worked case for every figure, and
pyfolio-reloaded's ``round_trips`` as the independent reference on random whole-share trades."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core import trades as tr

D = pd.bdate_range("2024-01-01", periods=12)  # Mon 2024-01-01 ...


def _trade(day, symbol, shares, price, cost):
    return {"date": D[day], "symbol": symbol, "shares": float(shares), "price": float(price), "cost": float(cost)}


def _hand_case():
    trades = pd.DataFrame(
        [
            _trade(0, "A", 10, 100, 1.0),
            _trade(1, "B", -4, 50, 0.2),
            _trade(2, "A", 10, 110, 1.1),
            _trade(3, "B", 4, 60, 0.24),
            _trade(4, "A", -15, 120, 1.8),
            _trade(7, "A", -10, 90, 0.9),  # closes the last 5 long and opens 5 short at 90
            _trade(9, "A", 5, 80, 0.4),
        ]
    )
    equity = pd.DataFrame({"date": D, "equity": 10_000.0, "ret": 0.0})
    return trades, equity


def test_round_trips_hand_worked():
    trades, equity = _hand_case()
    before = trades.copy()
    rt = tr.round_trips(trades, equity)
    pd.testing.assert_frame_equal(trades, before)  # inputs untouched
    assert rt["symbol"].tolist() == ["B", "A", "A", "A"]  # by close date
    assert rt["long"].tolist() == [False, True, True, False]
    assert rt["open_dt"].tolist() == [D[1], D[0], D[2], D[7]]
    assert rt["close_dt"].tolist() == [D[3], D[4], D[7], D[9]]
    # B: short 4 at 50, bought back at 60. A: 10@100 + 5@110 sold at 120; 5@110 sold at 90;
    # 5 short at 90 bought back at 80.
    np.testing.assert_allclose(rt["pnl"], [-40.0, 250.0, -100.0, 50.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rt["shares"], [4.0, 15.0, 5.0, 5.0])
    np.testing.assert_allclose(rt["rt_return"], [-40 / 200, 250 / 1550, -100 / 550, 50 / 450], rtol=1e-15)
    # Costs pro rata per share: entry 0.05/0.1/0.11/0.09 a share, exit 0.06/0.12/0.09/0.08.
    np.testing.assert_allclose(
        rt["net_pnl"],
        [-40 - 0.2 - 0.24, 250 - (1.0 + 0.55) - 1.8, -100 - 0.55 - 0.45, 50 - 0.45 - 0.4],
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(rt["returns"], rt["pnl"] / 10_000.0, rtol=1e-15)
    assert rt["duration_days"].tolist() == [2, 4, 7, 2]
    assert rt["duration_sessions"].tolist() == [2, 4, 5, 2]


def test_round_trip_stats_hand_worked():
    trades, equity = _hand_case()
    stats = tr.round_trip_stats(tr.round_trips(trades, equity))
    assert list(stats.index) == list(tr.ROUND_TRIP_STATS) and list(stats.columns) == ["all", "long", "short"]
    a, lo, sh = stats["all"], stats["long"], stats["short"]
    assert (a["round_trips"], a["winning"], a["losing"], a["even"]) == (4, 2, 2, 0)
    assert a["win_rate"] == 0.5
    assert a["total_pnl"] == pytest.approx(160.0) and a["gross_profit"] == 300 and a["gross_loss"] == -140
    assert a["profit_factor"] == pytest.approx(300 / 140)
    assert a["avg_pnl"] == pytest.approx(40.0) and a["median_pnl"] == pytest.approx(5.0)  # (-40 + 50) / 2
    assert a["avg_win"] == 150 and a["avg_loss"] == -70 and a["win_loss_ratio"] == pytest.approx(150 / 70)
    assert a["largest_win"] == 250 and a["largest_loss"] == -100
    assert a["avg_return"] == pytest.approx(160 / 4 / 10_000.0)
    assert a["avg_trade_return"] == pytest.approx(np.mean([-0.2, 250 / 1550, -100 / 550, 50 / 450]))
    assert (a["avg_holding_days"], a["median_holding_days"]) == (3.75, 3.0)
    assert (a["longest_holding_days"], a["shortest_holding_days"], a["avg_holding_sessions"]) == (7, 2, 3.25)
    assert (lo["round_trips"], lo["win_rate"], lo["profit_factor"]) == (2, 0.5, 2.5)
    assert (sh["round_trips"], sh["total_pnl"], sh["profit_factor"]) == (2, 10.0, 1.25)
    # No losing trip: profit factor and win/loss ratio are undefined, not infinite.
    only_win = tr.round_trip_stats(tr.round_trips(trades[trades["symbol"] == "A"].head(3), equity))
    assert only_win.loc["round_trips", "all"] == 1 and np.isnan(only_win.loc["profit_factor", "all"])
    assert (
        only_win.loc["round_trips", "short"] == 0
        and only_win["short"].drop(["round_trips", "winning", "losing", "even"]).isna().all()
    )


def test_round_trips_agree_with_pyfolio():
    """pyfolio-reloaded (test-only dependency) on ~300 random whole-share trades with flips (155 round trips)."""
    rts = pytest.importorskip("pyfolio.round_trips")
    rng = np.random.default_rng(5)
    days = pd.bdate_range("2023-01-02", periods=150)
    rows = []
    for day in days:
        for sym in rng.choice(["AA", "BB", "CC", "DD"], size=rng.integers(1, 4), replace=False):
            shares = int(rng.integers(-30, 31)) or 7
            rows.append({"date": day, "symbol": sym, "shares": float(shares), "price": float(rng.uniform(20, 80))})
    trades = pd.DataFrame(rows).assign(cost=0.0)
    equity = pd.DataFrame({"date": days, "equity": 1e5 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))})
    equity["ret"] = equity["equity"].pct_change().fillna(0.01)
    ours = tr.round_trips(trades, equity)
    txn = trades.rename(columns={"shares": "amount"}).set_index("date")[["amount", "price", "symbol"]]
    start = equity.set_index("date")["equity"] / (1 + equity.set_index("date")["ret"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rts.extract_round_trips(txn, portfolio_value=start)
    ref = ref.sort_values(["close_dt", "symbol"], kind="stable").reset_index(drop=True)
    assert len(ours) == len(ref) > 100
    assert ours["symbol"].tolist() == ref["symbol"].tolist()
    assert ours["long"].tolist() == ref["long"].astype(bool).tolist()
    assert (ours["open_dt"] == ref["open_dt"]).all()
    np.testing.assert_allclose(ours["pnl"], ref["pnl"], rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(ours["rt_return"], ref["rt_returns"], rtol=1e-9)
    np.testing.assert_allclose(ours["returns"], ref["returns"], rtol=1e-9)
    assert (ours["duration_days"] == ref["duration"].dt.days).all()
    ref_pnl = rts.agg_all_long_short(ref, "pnl", rts.PNL_STATS + rts.SUMMARY_STATS)
    stats = tr.round_trip_stats(ours)
    for ours_name, ref_name in (
        ("total_pnl", "Total profit"),
        ("profit_factor", "Profit factor"),
        ("avg_pnl", "Avg. trade net profit"),
        ("avg_win", "Avg. winning trade"),
        ("largest_loss", "Largest losing trade"),
        ("win_rate", "Percent profitable"),
        ("round_trips", "Total number of round_trips"),
    ):
        for col, ref_col in (("all", "All trades"), ("long", "Long trades"), ("short", "Short trades")):
            assert stats.loc[ours_name, col] == pytest.approx(float(ref_pnl.loc[ref_name, ref_col]), rel=1e-9)


def test_holdings_hand_worked():
    positions = pd.DataFrame(
        {
            "date": [D[0], D[0], D[1], D[1], D[1], D[2]],
            "symbol": ["A", "B", "A", "B", "C", "C"],
            "value": [300.0, -100.0, 500.0, -200.0, 100.0, 50.0],
        }
    )
    equity = pd.DataFrame({"date": D[:4], "equity": [1000.0, 1000.0, 500.0, 800.0], "ret": 0.0})
    h = tr.holdings_over_time(positions, equity)
    assert h["names"].tolist() == [2, 3, 1, 0] and h["short_names"].tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(h["gross_exposure"], [0.4, 0.8, 0.1, 0.0])
    np.testing.assert_allclose(h["net_exposure"], [0.2, 0.4, 0.1, 0.0])
    np.testing.assert_allclose(h["max_abs_weight"], [0.3, 0.5, 0.1, 0.0])
    top = tr.top_holdings(positions, equity, n=2)
    assert top["symbol"].tolist() == ["A", "B"]  # |0.5| then |-0.2| (C's 0.1 is third)
    np.testing.assert_allclose(top["max_weight"], [0.5, -0.2])
    np.testing.assert_allclose(top["avg_weight_held"], [0.4, -0.15])
    assert top["sessions_held"].tolist() == [2, 2]


def test_no_trades_no_round_trips():
    """No trade (a strategy that never traded): an empty table of the same columns and statistics
    that say 0 round trips and n/a elsewhere, never a healthy-looking 0."""
    trades, equity = _hand_case()
    rt = tr.round_trips(trades.head(0), equity)
    assert list(rt.columns) == list(tr.ROUND_TRIP_COLUMNS) and rt.empty
    stats = tr.round_trip_stats(rt)
    assert (stats.loc["round_trips"] == 0).all()
    assert stats.drop(["round_trips", "winning", "losing", "even"]).isna().all().all()
    only_open = tr.round_trips(trades.head(1), equity)  # a position opened, never closed
    assert only_open.empty


def test_same_day_fills_of_one_direction_are_one_fill_at_their_average_price():
    """Metamorphic: A's first buy (10 at 100, cost 1.0) split into 4 at 98 and 6 at the price that
    keeps the notional (cost 0.4 + 0.6) on the same date gives the same round trips."""
    trades, equity = _hand_case()
    split = pd.DataFrame([_trade(0, "A", 4, 98, 0.4), _trade(0, "A", 6, (1000 - 4 * 98) / 6, 0.6)])
    both = pd.concat([split, trades.iloc[1:]], ignore_index=True)
    pd.testing.assert_frame_equal(
        tr.round_trips(both, equity), tr.round_trips(trades, equity), check_exact=False, rtol=1e-12
    )


def test_the_round_trip_section_says_which_names_are_still_open():
    """Closed trips only: a name still held at the end is said on the page, not silently left out."""
    from quantlab_assets.analytics.core.tearsheet_render import open_lots_line

    class Sheet:
        holdings = pd.DataFrame({"names": [1, 2]}, index=D[:2])

    assert open_lots_line(Sheet()) == (
        "Closed round trips only: the 2 name(s) still held on 2024-01-02 are not counted "
        "(pyfolio closes them at the last price)."
    )
    Sheet.holdings = pd.DataFrame({"names": [1, 0]}, index=D[:2])
    assert open_lots_line(Sheet()) == "Closed round trips only; nothing was held at the end."
