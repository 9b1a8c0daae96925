"""The cash convention (sells first, buys trimmed to the cash floor), carry (borrow fee, interest
on cash) and the participation cap: hand-worked cases, the never-negative-cash property and
incremental = batch with every option on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core import nb
from quantlab_assets.backtest_engine.core.engine import BacktestState, concat_results, run_backtest, simulate
from quantlab_assets_tests.backtest_engine.test_engine import assert_results_identical, random_market

NAN = np.nan


def long_only_market(seed: int, T: int, N: int, holes: float):
    """Random prices with missing opens/closes and long-only decisions with gross in (0, 1]."""
    rng = np.random.default_rng(seed)
    close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (T, N)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (T, N)))
    open_[rng.random((T, N)) < holes] = NAN
    close[rng.random((T, N)) < holes] = NAN
    raw = rng.random((T, N)) * (rng.random((T, N)) < 0.6)
    gross = rng.choice([1.0, 1.0, rng.uniform(0.3, 1.0)], size=(T, 1))
    decisions = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-12) * gross
    decisions[rng.random(T) < 0.2] = NAN  # sessions without a decision
    return open_, close, decisions


@pytest.mark.parametrize("seed", range(12))
def test_long_only_book_with_gross_at_most_one_never_has_negative_cash(seed):
    holes = [0.0, 0.02, 0.1][seed % 3]
    open_, close, decisions = long_only_market(seed, T=200, N=15, holes=holes)
    bps = [(1.0, 2.0), (10.0, 25.0), (0.0, 0.0), (50.0, 50.0)][seed % 4]
    _, res = simulate(BacktestState.initial(15, 1e6), open_, close, decisions, *bps)
    assert res.cash.min() >= 0.0
    assert np.nanmax(res.gross_exposure) <= 1.0 + 1e-12
    marks = np.where(np.isnan(res.prices), 0.0, res.prices)
    np.testing.assert_allclose(res.equity, res.cash + (res.positions * marks).sum(axis=1), rtol=1e-12, atol=0)
    if holes:
        assert len(res.skipped) > 0  # the stuck-position case is exercised


def test_fully_invested_book_trims_the_last_buy_by_its_costs():
    # Two names at 100 and 50, targets 60/40 of 10,000 with 20 bps: the smaller order (B,
    # 4,000, cost 8) fills first, then A gets what is left with its cost: 5,992 / 1.002.
    open_ = np.array([[100.0, 50.0], [100.0, 50.0]])
    close = open_.copy()
    decisions = np.array([[0.6, 0.4], [NAN, NAN]])
    _, res = simulate(BacktestState.initial(2, 10_000.0), open_, close, decisions, fee_bps=20)
    a_notional = 5_992.0 / 1.002
    np.testing.assert_allclose(res.positions[1], [a_notional / 100.0, 80.0], rtol=1e-15)
    assert res.cash[1] == 0.0
    np.testing.assert_allclose(res.costs[1], 8.0 + a_notional * 0.002, rtol=1e-15)
    assert res.trades.symbol.tolist() == [1, 0]


def test_levered_book_borrows_what_it_targets_and_no_more():
    # Weights 0.9 + 0.6 = 1.5 on 10,000: floor = 10,000 * (1 - 1.5) = -5,000. Without costs
    # both buys fill in full and cash is exactly -5,000; with 10 bps the last buy is trimmed
    # so cash is again -5,000 (the costs come out of the last buy, not out of extra borrowing).
    open_ = np.array([[100.0, 50.0], [100.0, 50.0]])
    decisions = np.array([[0.9, 0.6], [NAN, NAN]])
    _, free = simulate(BacktestState.initial(2, 10_000.0), open_, open_, decisions)
    assert free.cash[1] == -5_000.0
    np.testing.assert_allclose(free.positions[1], [90.0, 120.0])
    _, costly = simulate(BacktestState.initial(2, 10_000.0), open_, open_, decisions, fee_bps=10)
    np.testing.assert_allclose(costly.cash[1], -5_000.0, rtol=1e-15)
    # B (6,000 -> cost 6) first, then A: cash 10,000 - 6,006 + 5,000 = 8,994 left to spend.
    np.testing.assert_allclose(costly.positions[1], [8_994.0 / 1.001 / 100.0, 120.0], rtol=1e-15)


def test_a_held_name_without_an_open_keeps_its_value_and_cash_stays_non_negative():
    # Day 1: buy A 100%. Day 2 decision: all into B. Day 3: A has no open, so A cannot be sold;
    # B is sized on the whole equity (100% of it) but the buy is trimmed to the cash there is: 0.
    open_ = np.array([[10.0, 20.0], [10.0, 20.0], [NAN, 20.0], [12.0, 20.0]])
    close = np.array([[10.0, 20.0], [10.0, 20.0], [11.0, 20.0], [12.0, 20.0]])
    decisions = np.array([[1.0, 0.0], [0.0, 1.0], [NAN, NAN], [NAN, NAN]])
    _, res = simulate(BacktestState.initial(2, 1_000.0), open_, close, decisions)
    assert res.positions[2].tolist() == [100.0, 0.0]  # nothing bought with cash it does not have
    assert res.cash.tolist() == [1_000.0, 0.0, 0.0, 0.0]
    assert (res.skipped.t.tolist(), res.skipped.reason.tolist()) == ([2], [nb.NO_OPEN])


def test_borrow_fee_accrues_daily_on_the_short_value_at_the_close():
    # Short 10 shares of A at 100 (weight -0.5 of 2,000) with a 252 bps/year borrow fee:
    # 1 bp of the short value per session, charged at the close.
    open_ = np.array([[100.0], [100.0], [100.0], [100.0]])
    close = np.array([[100.0], [100.0], [110.0], [90.0]])
    decisions = np.array([[-0.5], [NAN], [NAN], [NAN]])
    _, res = simulate(BacktestState.initial(1, 2_000.0), open_, close, decisions, borrow_bps=252.0)
    np.testing.assert_allclose(res.borrow_fees, [0.0, 0.1, 0.11, 0.09], rtol=1e-12)
    np.testing.assert_allclose(res.costs, res.borrow_fees)  # no trading costs here
    np.testing.assert_allclose(res.cash[1:], 3_000.0 - np.cumsum(res.borrow_fees[1:]), rtol=1e-15)
    np.testing.assert_allclose(res.pnl_gross, res.pnl_net + res.borrow_fees)


def test_interest_on_cash_accrues_per_session_and_is_pnl_not_cost():
    # 252 bps/year = 1 bp per session on the cash held through the session (after the fills).
    open_ = np.full((3, 1), 50.0)
    decisions = np.array([[0.25], [NAN], [NAN]])
    _, res = simulate(BacktestState.initial(1, 1_000.0), open_, open_, decisions, cash_interest_bps=252.0)
    expected_cash = [1_000.0 * 1.0001, 0.0, 0.0]
    expected_cash[1] = (expected_cash[0] - 0.25 * expected_cash[0]) * 1.0001
    expected_cash[2] = expected_cash[1] * 1.0001
    np.testing.assert_allclose(res.cash, expected_cash, rtol=1e-14)
    np.testing.assert_allclose(res.interest, np.array(expected_cash) / 1.0001 * 1e-4, rtol=1e-12)
    assert res.costs.tolist() == [0.0, 0.0, 0.0]


def test_participation_cap_fills_a_share_of_volume_and_drops_the_rest():
    # Target 1,000 shares of A (10,000 at 10); volume 2,000 and a 10% cap: 200 shares fill,
    # the rest is dropped (reported), and nothing more trades the next session without a decision.
    open_ = np.full((3, 1), 10.0)
    volume = np.full((3, 1), 2_000.0)
    decisions = np.array([[1.0], [NAN], [NAN]])
    _, res = simulate(BacktestState.initial(1, 10_000.0), open_, open_, decisions, max_participation=0.1, volume=volume)
    assert res.positions[:, 0].tolist() == [0.0, 200.0, 200.0]
    assert (res.skipped.t.tolist(), res.skipped.reason.tolist()) == ([1], [nb.CAPPED])
    with pytest.raises(ValueError, match="needs the volume"):
        simulate(BacktestState.initial(1, 1.0), open_, open_, decisions, max_participation=0.1)
    with pytest.raises(ValueError, match="max_participation"):
        simulate(BacktestState.initial(1, 1.0), open_, open_, decisions, max_participation=1.5, volume=volume)


def test_run_backtest_caps_on_adjusted_volume_and_reports_the_reason():
    # Adjustment factor 0.5 (adj_close = close / 2): 1,000 raw shares traded are 2,000 adjusted
    # shares; a 10% cap allows 200 adjusted shares (at adjusted price 5: notional 1,000).
    dates = pd.bdate_range("2024-01-02", periods=2)
    bars = pd.DataFrame(
        {"date": dates, "symbol": "A", "open": 10.0, "close": 10.0, "adj_close": 5.0, "volume": 1_000.0}
    )
    targets = pd.DataFrame({"date": dates[:1], "symbol": "A", "weight": [1.0]})
    out = run_backtest(bars, targets, dates[0], dates[-1], capital=10_000.0, max_participation=0.1)
    assert out.positions["shares"].tolist() == [200.0]
    assert out.skipped["reason"].tolist() == ["participation cap (rest dropped)"]
    with pytest.raises(ValueError, match="volume column"):
        run_backtest(bars.drop(columns="volume"), targets, dates[0], dates[-1], max_participation=0.1)


def test_day_by_day_equals_one_call_with_carry_and_cap_bit_for_bit():
    open_, close, decisions = random_market(seed=9, T=300, N=20)
    volume = np.random.default_rng(9).uniform(50, 5_000, open_.shape)
    options = dict(borrow_bps=80.0, cash_interest_bps=300.0, max_participation=0.05)
    start = BacktestState.initial(20, 1e6)
    batch_state, batch = simulate(start, open_, close, decisions, 2.0, 3.0, volume=volume, **options)
    state, parts = start, []
    for lo, hi in [(0, 1), (1, 90), (90, 91), (91, 300)]:
        state, part = simulate(
            state, open_[lo:hi], close[lo:hi], decisions[lo:hi], 2.0, 3.0, volume=volume[lo:hi], **options
        )
        parts.append(part)
    assert state == batch_state
    assert_results_identical(concat_results(parts), batch)
    for name in ("borrow_fees", "interest"):
        assert np.array_equal(getattr(concat_results(parts), name), getattr(batch, name))
    assert (batch.skipped.reason == nb.CAPPED).sum() > 100 and batch.borrow_fees.sum() > 0
