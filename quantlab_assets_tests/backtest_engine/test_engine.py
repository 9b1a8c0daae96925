"""The simulator: a hand-worked book, incremental = batch, accounting invariants, missing prices,
the frames wrapper and resuming from a stored state."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core.engine import (
    CASH_SYMBOL,
    EQUITY_COLUMNS,
    POSITION_COLUMNS,
    SKIPPED_COLUMNS,
    STATE_COLUMNS,
    TRADE_COLUMNS,
    BacktestState,
    concat_results,
    run_backtest,
    simulate,
    state_from_frame,
    state_to_frame,
)

NAN = np.nan


# --- helpers ---------------------------------------------------------------------------------


def random_market(seed: int, T: int, N: int, holes: float = 0.02, no_decision: float = 0.1):
    """Random-walk adjusted prices with missing bars, and random long/short decisions with
    no-decision rows and NaN weights inside decision rows."""
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.015, (T, N)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, (T, N)))
    open_[rng.random((T, N)) < holes] = NAN
    close[rng.random((T, N)) < holes] = NAN
    open_[:3, 0] = NAN  # a symbol that lists late: no bar at all for three sessions
    close[:3, 0] = NAN
    decisions = rng.normal(0, 1, (T, N))
    decisions /= np.abs(decisions).sum(axis=1, keepdims=True) / 1.5
    decisions[rng.random((T, N)) < 0.05] = NAN
    decisions[rng.random(T) < no_decision] = NAN
    return open_, close, decisions


def reference_equity(capital, open_, close, decisions, bps):
    """The convention written out symbol by symbol in plain Python (an independent oracle)."""
    T, N = open_.shape
    cash, shares, mark, pending = capital, [0.0] * N, [math.nan] * N, None
    equity = []
    for t in range(T):
        o, c = open_[t], close[t]
        if pending is not None:
            eo = cash + sum(shares[j] * (o[j] if math.isfinite(o[j]) else mark[j]) for j in range(N) if shares[j] != 0)
            rate = bps / 1e4
            floor = min(0.0, eo * (1.0 - sum(pending))) if sum(pending) > 1.0 + 1e-9 else 0.0
            # (order value = target value - held value, symbol, notional), sells first.
            orders = [
                (pending[j] * eo - shares[j] * o[j], j, (pending[j] * eo / o[j] - shares[j]) * o[j])
                for j in range(N)
                if math.isfinite(o[j])
            ]
            for _, j, notional in sorted(orders):
                if notional > 0 and cash - notional * (1 + rate) < floor:
                    notional = max(0.0, (cash - floor) / (1 + rate))  # the buy the cash pays for
                cash -= notional + abs(notional) * rate
                shares[j] += notional / o[j]
        for j in range(N):
            if math.isfinite(c[j]):
                mark[j] = c[j]
            elif math.isnan(mark[j]) and math.isfinite(o[j]):
                mark[j] = o[j]
        equity.append(cash + sum(shares[j] * mark[j] for j in range(N) if shares[j] != 0))
        row = decisions[t]
        pending = None if np.isnan(row).all() else [0.0 if math.isnan(w) else w for w in row]
    return np.array(equity)


def to_long(dates, symbols, open_, close, adj_factor=None):
    T, N = open_.shape
    adj = np.ones((T, N)) if adj_factor is None else adj_factor
    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.DatetimeIndex(dates), N),
            "symbol": np.tile(symbols, T),
            "open": (open_ / adj).ravel(),
            "close": (close / adj).ravel(),
            "adj_close": close.ravel(),
        }
    )
    return frame[frame["open"].notna() | frame["close"].notna()].reset_index(drop=True)


def targets_long(dates, symbols, decisions):
    T, N = decisions.shape
    frame = pd.DataFrame(
        {"date": np.repeat(pd.DatetimeIndex(dates), N), "symbol": np.tile(symbols, T), "weight": decisions.ravel()}
    )
    decided = ~np.isnan(decisions).all(axis=1)
    return frame[np.repeat(decided, N)].reset_index(drop=True)


def assert_results_identical(a, b):
    for name in (
        "equity",
        "cash",
        "equity_open",
        "gross_exposure",
        "net_exposure",
        "turnover",
        "costs",
        "traded_notional",
        "pnl_gross",
        "pnl_net",
        "ret",
        "positions",
        "prices",
    ):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), name
    for kind in ("trades", "skipped"):
        for field, x in vars(getattr(a, kind)).items():
            assert np.array_equal(x, getattr(getattr(b, kind), field), equal_nan=True), (kind, field)


# --- a book worked by hand --------------------------------------------------------------------


def test_two_assets_five_days_by_hand():
    # Capital 10,000; fee 10 bps + slippage 5 bps = 15 bps of traded notional.
    open_ = np.array([[100, 50], [100, 50], [118, 47], [125, 40], [128, NAN]], float)
    close = np.array([[100, 50], [110, 48], [120, NAN], [130, 42], [126, NAN]], float)
    decisions = np.array([[0.5, 0.25], [NAN, NAN], [1.0, NAN], [0.5, 0.5], [NAN, NAN]])
    state, res = simulate(BacktestState.initial(2, 10_000.0), open_, close, decisions, fee_bps=10, slippage_bps=5)

    # Day 0: nothing pending, all cash: equity 10,000. Decide A 50%, B 25%.
    # Day 1 open: equity 10,000 -> A 0.5*10000/100 = 50 sh, B 0.25*10000/50 = 50 sh.
    #   notional 5,000 + 2,500 = 7,500; cost 7,500 * 15/1e4 = 11.25;
    #   cash 10,000 - 7,500 - 11.25 = 2,488.75. Close: 2,488.75 + 50*110 + 50*48 = 10,388.75.
    #   Decision: NaN row -> hold.
    # Day 2: no trades. B has no close: marked at its last close 48.
    #   2,488.75 + 50*120 + 50*48 = 10,888.75. Decision: A 100%, B NaN -> 0 (sell B).
    # Day 3 open: 2,488.75 + 50*125 + 50*40 = 10,738.75 -> A 10,738.75/125 = 85.91 sh (+35.91),
    #   B -> 0 (-50). Orders in ascending order value: the sell of B first (-2,000, cost 3):
    #   cash 2,488.75 + 2,000 - 3 = 4,485.75. The buy of A (+4,488.75, cost 6.733125) would
    #   leave -9.733125 below the floor min(0, E(1 - 1.0)) = 0, so it is trimmed to what the cash
    #   pays with its cost: 4,485.75 / 1.0015 = 4,479.0314528 (35.8322516 sh, cost 6.7185472);
    #   cash 0. A holds 85.8322516 sh. Traded 6,479.03, costs 9.72.
    #   Close: 85.8322516*130 = 11,158.1927109. Decision: A 50%, B 50%.
    # Day 4 open: B has no open -> its order (50%) is skipped and reported.
    #   equity 85.8322516*128 = 10,986.5282077; A 0.5*10,986.5282077/128 = 42.9161258 sh
    #   (-42.9161258 sh): notional -5,493.2641038, cost 8.2398962; cash 5,485.0242077.
    #   Close: 5,485.0242077 + 42.9161258*126 = 10,892.4560599.
    np.testing.assert_allclose(
        res.equity, [10_000, 10_388.75, 10_888.75, 11_158.1927109, 10_892.4560599], atol=5e-7, rtol=0
    )
    np.testing.assert_allclose(res.costs, [0, 11.25, 0, 9.7185472, 8.2398962], atol=5e-7, rtol=0)
    np.testing.assert_allclose(res.cash, [10_000, 2_488.75, 2_488.75, 0.0, 5_485.0242077], atol=5e-7, rtol=0)
    assert res.cash.min() >= 0.0
    np.testing.assert_allclose(res.traded_notional, [0, 7_500, 0, 6_479.0314528, 5_493.2641038], atol=5e-7)
    np.testing.assert_allclose(res.turnover[1], 0.75)
    np.testing.assert_allclose(res.pnl_gross[3], 11_158.1927109 - 10_888.75 + 9.7185472)
    np.testing.assert_allclose(res.positions[3], [85.8322516, 0.0])
    # Fills in execution order: ascending order value in a session (B before A on day 1).
    assert res.trades.t.tolist() == [1, 1, 3, 3, 4]
    assert res.trades.symbol.tolist() == [1, 0, 1, 0, 0]
    assert res.trades.decision_t.tolist() == [0, 0, 2, 2, 3]
    np.testing.assert_allclose(res.trades.notional[:4], [2_500, 5_000, -2_000, 4_479.0314528])
    assert (res.skipped.t.tolist(), res.skipped.symbol.tolist(), res.skipped.weight.tolist()) == ([4], [1], [0.5])
    assert state.pending is None and state.shares[1] == 0.0
    assert state.last_close.tolist() == [126.0, 42.0]  # B still marked at its last close
    assert state.equity == res.equity[-1] and state.cash == res.cash[-1]


# --- incremental = batch ----------------------------------------------------------------------


def test_day_by_day_equals_one_call_bit_for_bit():
    open_, close, decisions = random_market(seed=1, T=500, N=30)
    start = BacktestState.initial(30, 1_000_000.0)
    batch_state, batch = simulate(start, open_, close, decisions, fee_bps=2.0, slippage_bps=3.5)
    state, parts = start, []
    for t in range(500):
        state, part = simulate(state, open_[t : t + 1], close[t : t + 1], decisions[t : t + 1], 2.0, 3.5)
        parts.append(part)
    assert state == batch_state
    assert_results_identical(concat_results(parts), batch)
    # Uneven chunks too.
    state, parts = start, []
    for lo, hi in [(0, 1), (1, 137), (137, 138), (138, 420), (420, 500)]:
        state, part = simulate(state, open_[lo:hi], close[lo:hi], decisions[lo:hi], 2.0, 3.5)
        parts.append(part)
    assert state == batch_state
    assert_results_identical(concat_results(parts), batch)
    assert len(batch.trades) > 5_000 and len(batch.skipped) > 50  # the case exercises both


def test_matches_a_plain_python_loop():
    open_, close, decisions = random_market(seed=2, T=120, N=12)
    _, res = simulate(BacktestState.initial(12, 250_000.0), open_, close, decisions, 4.0, 1.0)
    np.testing.assert_allclose(res.equity, reference_equity(250_000.0, open_, close, decisions, 5.0), rtol=1e-10)


# --- invariants -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_accounting_identity_and_pnl_attribution_every_day(seed):
    open_, close, decisions = random_market(seed=seed, T=250, N=20)
    start = BacktestState.initial(20, 1e6)
    state, res = simulate(start, open_, close, decisions, 3.0, 2.0)
    marks = np.where(np.isnan(res.prices), 0.0, res.prices)
    holdings = (res.positions * marks).sum(axis=1)
    np.testing.assert_allclose(res.equity, res.cash + holdings, rtol=1e-9, atol=0)
    # P&L attribution: overnight on yesterday's book, intraday on today's, minus costs.
    prev_pos = np.vstack([start.shares, res.positions[:-1]])
    prev_mark = np.vstack([start.last_close, res.prices[:-1]])
    prev_mark = np.where(np.isnan(prev_mark), 0.0, prev_mark)
    open_mark = np.where(np.isfinite(open_), open_, prev_mark)
    overnight = (prev_pos * (open_mark - prev_mark)).sum(axis=1)
    intraday = (res.positions * (marks - open_mark)).sum(axis=1)
    np.testing.assert_allclose(res.pnl_net, overnight + intraday - res.costs, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(res.pnl_gross, res.pnl_net + res.costs)
    np.testing.assert_allclose(np.cumprod(1 + res.ret) * 1e6, res.equity, rtol=1e-9)
    # Cash moves by exactly the fills: -(notional + cost).
    flows = np.zeros(250)
    np.add.at(flows, res.trades.t, -(res.trades.notional + res.trades.cost))
    np.testing.assert_allclose(np.diff(np.r_[1e6, res.cash]), flows, rtol=1e-9, atol=1e-6)


def test_every_trade_fills_after_its_decision_date():
    dates = pd.bdate_range("2024-01-02", periods=60)
    symbols = [f"S{i}" for i in range(8)]
    open_, close, decisions = random_market(seed=6, T=60, N=8)
    out = run_backtest(
        to_long(dates, symbols, open_, close),
        targets_long(dates, symbols, decisions),
        dates[0],
        dates[-1],
        None,
        fee_bps=1.0,
        slippage_bps=1.0,
        capital=1e5,
    )
    assert len(out.trades) > 100
    assert (out.trades["date"] > out.trades["decision_date"]).all()
    decided = set(targets_long(dates, symbols, decisions)["date"])
    assert set(out.trades["decision_date"]) <= decided
    # And nothing trades on the first session: no decision was pending.
    assert out.trades["date"].min() > dates[0]


def test_constant_prices_without_costs_keep_equity_constant():
    T, N = 40, 6
    price = np.linspace(10, 60, N)
    open_ = close = np.tile(price, (T, 1))
    rng = np.random.default_rng(7)
    decisions = rng.normal(0, 1, (T, N))  # long/short, leveraged, every day
    _, res = simulate(BacktestState.initial(N, 1e6), open_, close, decisions, 0.0, 0.0)
    np.testing.assert_allclose(res.equity, 1e6, rtol=1e-12)
    assert res.traded_notional[1:].min() > 0


def test_buy_and_hold_follows_the_price_path():
    T = 30
    rng = np.random.default_rng(8)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, T)))[:, None]
    open_ = close * np.exp(rng.normal(0, 0.005, (T, 1)))
    decisions = np.full((T, 1), NAN)
    decisions[0] = 1.0  # decided once, at the first close; held after that
    _, res = simulate(BacktestState.initial(1, 1_000.0), open_, close, decisions, 0.0, 0.0)
    assert res.equity[0] == 1_000.0
    np.testing.assert_allclose(res.equity[1:], 1_000.0 * close[1:, 0] / open_[1, 0], rtol=1e-12)
    np.testing.assert_allclose(res.positions[1:, 0], 1_000.0 / open_[1, 0])
    assert len(res.trades) == 1 and res.trades.t[0] == 1


def test_costs_are_linear_in_bps():
    open_, close, decisions = random_market(seed=9, T=80, N=10, holes=0.0, no_decision=0.0)
    start = BacktestState.initial(10, 1e6)
    _, r10 = simulate(start, open_, close, decisions, 10.0, 0.0)
    _, r20 = simulate(start, open_, close, decisions, 15.0, 5.0)
    _, slip = simulate(start, open_, close, decisions, 0.0, 10.0)
    # Each fill pays |notional| * bps / 1e4.
    np.testing.assert_allclose(r20.trades.cost, np.abs(r20.trades.notional) * 20 / 1e4, rtol=1e-14)
    np.testing.assert_allclose(r20.costs, r20.traded_notional * 20 / 1e4, rtol=1e-14)
    # The first rebalance is sized from the same equity: its cost doubles exactly.
    np.testing.assert_allclose(r20.costs[1], 2 * r10.costs[1], rtol=1e-14)
    # Fees and slippage are the same kind of charge.
    assert np.array_equal(slip.equity, r10.equity)
    # With a steady book (fixed weights, drift rebalancing) costs barely move the path, so the
    # cost bill is linear in bps to within that small path effect.
    steady = np.tile(np.linspace(0.02, 0.18, 10), (80, 1))
    bills = [simulate(start, open_, close, steady, bps, 0.0)[1].costs.sum() for bps in (5, 10, 20)]
    np.testing.assert_allclose(np.array(bills) / bills[0], [1, 2, 4], rtol=2e-3)


def test_missing_open_skips_the_order_and_reports_it():
    open_ = np.array([[10, 20], [10, NAN], [11, 22], [12, NAN]], float)
    close = np.array([[10, 20], [10, 21], [11, 22], [12, 23]], float)
    decisions = np.array([[0.5, 0.5], [NAN, NAN], [0.0, 0.0], [NAN, NAN]])
    _, res = simulate(BacktestState.initial(2, 1_000.0), open_, close, decisions, 0.0, 0.0)
    # Day 1: B has no open: no fill at the stale close 20 (nor at day 2's price later).
    assert res.positions[1].tolist() == [50.0, 0.0]
    assert res.trades.symbol.tolist() == [0, 0]  # buy A on day 1, sell A on day 3 ... and nothing of B
    assert res.skipped.t.tolist() == [1] and res.skipped.symbol.tolist() == [1]
    assert res.skipped.weight.tolist() == [0.5] and res.skipped.decision_t.tolist() == [0]
    # The order is not retried on day 2 (no decision at day 1's close): cash stays idle.
    assert res.positions[2].tolist() == [50.0, 0.0]
    assert res.cash[2] == 500.0


def test_missing_open_reports_a_held_position_that_cannot_be_closed():
    open_ = np.array([[10, 20], [10, 20], [11, NAN], [12, 24]], float)
    close = np.array([[10, 20], [10, 20], [11, 21], [12, 24]], float)
    decisions = np.array([[0.5, 0.5], [0.0, 0.0], [0.0, 0.0], [NAN, NAN]])
    _, res = simulate(BacktestState.initial(2, 1_000.0), open_, close, decisions, 0.0, 0.0)
    assert res.positions[2].tolist() == [0.0, 25.0]  # A sold, B stuck
    assert res.skipped.t.tolist() == [2] and res.skipped.shares_held.tolist() == [25.0]
    # Valued at its last close (20) in the equity at day 2's open, sold at day 3's open.
    assert res.equity_open[2] == 0.0 + 50 * 11 + 25 * 20  # all invested: cash 0 before the open
    assert res.positions[3].tolist() == [0.0, 0.0] and res.equity[3] == res.cash[3]


def test_no_decision_row_holds_and_nan_weight_means_zero():
    open_ = close = np.tile([10.0, 20.0, 40.0], (4, 1))
    decisions = np.array([[0.2, 0.3, 0.5], [NAN, NAN, NAN], [0.6, NAN, NAN], [NAN, NAN, NAN]])
    _, res = simulate(BacktestState.initial(3, 1_000.0), open_, close, decisions, 0.0, 0.0)
    assert res.positions[1].tolist() == [20.0, 15.0, 12.5]
    assert res.positions[2].tolist() == res.positions[1].tolist()  # held
    assert res.positions[3].tolist() == [60.0, 0.0, 0.0]  # NaN inside a decision = 0
    assert res.costs.tolist() == [0.0] * 4


def test_symbol_without_a_close_yet_is_marked_at_its_first_open():
    open_ = np.array([[10.0, NAN], [10.0, 30.0], [10.0, 33.0], [10.0, 36.0]])
    close = np.array([[10.0, NAN], [10.0, NAN], [10.0, NAN], [10.0, 40.0]])
    decisions = np.array([[0.0, 1.0], [NAN, NAN], [NAN, NAN], [NAN, NAN]])
    _, res = simulate(BacktestState.initial(2, 300.0), open_, close, decisions, 0.0, 0.0)
    assert res.prices[:, 1].tolist()[1:] == [30.0, 30.0, 40.0]
    assert res.equity.tolist() == [300.0, 300.0, 300.0, 400.0]


def test_inputs_are_not_modified_and_bad_inputs_rejected():
    open_, close, decisions = random_market(seed=10, T=20, N=4)
    copies = [a.copy() for a in (open_, close, decisions)]
    start = BacktestState.initial(4, 1e4)
    state, res = simulate(start, open_, close, decisions, 1.0, 1.0)
    for a, b in zip((open_, close, decisions), copies):
        assert np.array_equal(a, b, equal_nan=True)
    assert start == BacktestState.initial(4, 1e4)
    with pytest.raises(ValueError):
        state.shares[0] = 1.0  # states are immutable
    bad = close.copy()
    bad[3, 1] = -1.0
    with pytest.raises(ValueError, match="non-positive"):
        simulate(start, open_, bad, decisions)
    # Every invalid value is caught wherever it sits (first, middle or last session) and named.
    for name, t, value, message in (
        ("open_", 0, 0.0, "open_ contains a non-positive"),
        ("open_", 19, np.inf, "open_ contains an infinite price"),
        ("close", 10, -np.inf, "close contains a non-positive"),
        ("close", 19, np.inf, "close contains an infinite price"),
        ("decisions", 19, -np.inf, "decisions contain an infinite weight"),
        ("decisions", 0, np.inf, "decisions contain an infinite weight"),
    ):
        arrays = {"open_": open_.copy(), "close": close.copy(), "decisions": decisions.copy()}
        arrays[name][t, 2] = value
        with pytest.raises(ValueError, match=message):
            simulate(start, arrays["open_"], arrays["close"], arrays["decisions"])
    with pytest.raises(ValueError, match="symbols"):
        simulate(BacktestState.initial(5, 1e4), open_, close, decisions)
    with pytest.raises(ValueError, match="fee_bps"):
        simulate(start, open_, close, decisions, fee_bps=-1)
    with pytest.raises(ValueError, match="shape"):
        simulate(start, open_, close[:-1], decisions)
    empty_state, empty = simulate(state, open_[:0], close[:0], decisions[:0])
    assert empty_state == state and len(empty) == 0


# --- the frames wrapper and the stored state --------------------------------------------------


def test_run_backtest_frames_and_adjusted_prices():
    dates = pd.bdate_range("2024-03-04", periods=6)
    # A 2:1 split before the open of day 3: raw prices halve, adjusted prices do not move.
    adj = np.array([[2.0], [2.0], [2.0], [1.0], [1.0], [1.0]])
    adj_open = np.full((6, 1), 50.0)
    adj_close = np.full((6, 1), 50.0)
    bars = to_long(dates, ["AAA"], adj_open, adj_close, adj_factor=adj)
    assert bars["open"].tolist() == [25.0, 25.0, 25.0, 50.0, 50.0, 50.0]
    targets = pd.DataFrame({"date": [dates[0]], "symbol": ["AAA"], "weight": [1.0]})
    out = run_backtest(bars, targets, dates[0], dates[-1], None, 0.0, 0.0, 10_000.0)
    assert list(out.equity.columns) == list(EQUITY_COLUMNS)
    assert list(out.positions.columns) == list(POSITION_COLUMNS)
    assert list(out.trades.columns) == list(TRADE_COLUMNS)
    assert list(out.skipped.columns) == list(SKIPPED_COLUMNS)
    assert out.equity["equity"].tolist() == [10_000.0] * 6  # the split is not a loss
    trade = out.trades.iloc[0]
    assert (trade["date"], trade["decision_date"], trade["side"]) == (dates[1], dates[0], "buy")
    assert trade["shares"] == 200.0 and trade["price"] == 50.0
    assert out.positions["weight"].tolist() == [1.0] * 5
    assert out.as_of == dates[-1]


def test_state_frame_round_trip():
    open_, close, decisions = random_market(seed=11, T=30, N=5)
    state, _ = simulate(BacktestState.initial(5, 1e5), open_, close, decisions, 1.0, 0.0)
    symbols = ["A", "B", "C", "D", "E"]
    frame = state_to_frame(state, symbols, "2024-05-31")
    assert list(frame.columns) == list(STATE_COLUMNS) and len(frame) == 6
    assert frame.loc[frame["symbol"] == CASH_SYMBOL, "shares"].item() == state.cash
    assert state_from_frame(frame) == state
    assert state_from_frame(frame.sample(frac=1, random_state=0), symbols) == state
    # A new symbol joins flat; a symbol that held shares cannot be dropped silently.
    wider = state_from_frame(frame, symbols + ["F"])
    assert wider.shares[-1] == 0.0 and np.isnan(wider.last_close[-1])
    held = symbols[int(np.flatnonzero(state.shares)[0])]
    with pytest.raises(ValueError, match="outside the run"):
        state_from_frame(frame, [s for s in symbols if s != held])
    no_pending = BacktestState(state.cash, state.shares, None, state.last_close, state.equity)
    assert state_from_frame(state_to_frame(no_pending, symbols, "2024-05-31")).pending is None


def test_daily_runs_resumed_from_the_stored_state_equal_one_run():
    dates = pd.bdate_range("2023-01-02", periods=90)
    symbols = [f"S{i:02d}" for i in range(10)]
    open_, close, decisions = random_market(seed=12, T=90, N=10)
    bars = to_long(dates, symbols, open_, close)
    targets = targets_long(dates, symbols, decisions)
    full = run_backtest(bars, targets, dates[0], dates[-1], None, 2.0, 1.0, 1e6)
    stored, pieces = None, []
    for lo, hi in [(0, 30), (30, 31), (31, 32), (32, 90)]:
        out = run_backtest(bars, targets, dates[lo], dates[hi - 1], stored, 2.0, 1.0, 1e6)
        stored = out.state_frame()
        pieces.append(out)
    for name in ("equity", "positions", "trades", "skipped"):
        joined = pd.concat([getattr(p, name) for p in pieces], ignore_index=True)
        pd.testing.assert_frame_equal(joined, getattr(full, name), check_exact=True)
    assert pieces[-1].state == full.state
    # The first fill of a resumed run is attributed to the stored state's date.
    resumed = pieces[1].trades
    assert (resumed["decision_date"] == dates[29]).all() and (resumed["date"] == dates[30]).all()
    with pytest.raises(ValueError, match="not before"):
        run_backtest(bars, targets, dates[40], dates[50], stored, 2.0, 1.0, 1e6)


def test_run_backtest_rejects_stray_targets_and_duplicate_bars():
    dates = pd.bdate_range("2024-01-02", periods=5)
    bars = to_long(dates, ["AAA"], np.full((5, 1), 10.0), np.full((5, 1), 10.0))
    targets = pd.DataFrame({"date": [pd.Timestamp("2024-01-06")], "symbol": ["AAA"], "weight": [1.0]})
    with pytest.raises(ValueError, match="without bars"):
        run_backtest(bars, targets, dates[0], dates[-1])
    with pytest.raises(ValueError, match="duplicate .* AAA 2024-01-03"):
        run_backtest(pd.concat([bars, bars.iloc[[1]]]), targets.iloc[:0], dates[0], dates[-1])
    twice = pd.DataFrame({"date": [dates[2]] * 2, "symbol": ["AAA"] * 2, "weight": [0.5, 1.0]})
    with pytest.raises(ValueError, match="targets_long has duplicate .* AAA 2024-01-04"):
        run_backtest(bars, twice, dates[0], dates[-1])
