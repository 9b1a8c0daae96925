"""The compiled session loop's steps one by one (``backtest_engine/core/nb.py``): hand-worked
sizing, price, cost, cash floor and trim, valuation, carry and decisions."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab_assets.backtest_engine.core import nb

NAN = np.nan


def test_order_size_and_value():
    # 30% of 10,000 at 50 is 60 shares; 20 are held, so 40 to buy; order value 3,000 - 1,000.
    assert nb.order_size_nb(0.3, 10_000.0, 50.0, 20.0) == 40.0
    assert nb.order_value_nb(0.3, 10_000.0, 20.0, 50.0) == 2_000.0
    assert nb.order_size_nb(0.0, 10_000.0, 50.0, 20.0) == -20.0  # weight 0 sells everything


def test_fill_price_is_the_open():
    row = np.array([101.5, NAN])
    assert nb.fill_price_nb(row, 0) == 101.5
    assert np.isnan(nb.fill_price_nb(row, 1))  # no open: no fill


def test_participation_cap():
    assert nb.participation_cap_nb(1_000.0, 0.1) == 100.0
    assert nb.participation_cap_nb(NAN, 0.1) == 0.0  # no volume reported: nothing may trade


def test_order_cost_is_bps_of_notional_either_side():
    assert nb.order_cost_nb(-2_000.0, 0.0003) == pytest.approx(0.6, abs=1e-15)
    assert nb.order_cost_nb(2_000.0, 0.0003) == nb.order_cost_nb(-2_000.0, 0.0003)


def test_cash_floor():
    assert nb.cash_floor_nb(10_000.0, 1.0) == 0.0
    assert nb.cash_floor_nb(10_000.0, 1.0 + 1e-10) == 0.0  # rounding of a weight sum: no leverage
    assert nb.cash_floor_nb(10_000.0, 1.5) == -5_000.0  # a 150% book borrows half its equity
    assert nb.cash_floor_nb(10_000.0, 0.4) == 0.0


def test_execute_order_fills_in_full_when_cash_allows():
    shares, notional, cost, cash = nb.execute_order_nb(10.0, 100.0, 5_000.0, 0.0, 0.001)
    assert (shares, notional, cost, cash) == (10.0, 1_000.0, 1.0, 3_999.0)


def test_execute_order_trims_the_buy_to_the_cash_floor():
    # 1,000 of cash, a 2,000 buy at 20 bps: the buy gets 1,000 / 1.002 and cash ends at 0.
    shares, notional, cost, cash = nb.execute_order_nb(20.0, 100.0, 1_000.0, 0.0, 0.002)
    assert notional == pytest.approx(1_000.0 / 1.002, rel=1e-15)
    assert shares == pytest.approx(notional / 100.0, rel=1e-15)
    assert cost == pytest.approx(notional * 0.002, rel=1e-15)
    assert 0.0 <= cash < 1e-9  # at the floor up to rounding, never below it
    assert nb.trim_buy_nb(1_000.0, 0.0, 100.0, 0.002) == shares


def test_execute_order_never_trims_a_sell_and_skips_a_buy_without_cash():
    assert nb.execute_order_nb(-5.0, 100.0, -50.0, 0.0, 0.0) == (-5.0, -500.0, 0.0, 450.0)
    assert nb.execute_order_nb(5.0, 100.0, 0.0, 0.0, 0.001) == (0.0, 0.0, 0.0, 0.0)


def test_equity_at_open_marks_a_missing_open_at_the_last_mark():
    held = np.array([10.0, 5.0, 2.0])
    mark = np.array([NAN, 40.0, NAN])
    assert nb.equity_at_open_nb(np.array([100.0, NAN, NAN]), held, mark, 1_000.0) == (2_200.0, 0)
    assert nb.equity_at_open_nb(np.array([-1.0, NAN, NAN]), held, mark, 1_000.0)[1] == nb.INVALID_INPUT
    assert nb.equity_at_open_nb(np.array([np.inf, NAN, NAN]), held, mark, 1_000.0)[1] == nb.INVALID_INPUT


def test_mark_at_close_takes_close_then_last_mark_then_open():
    held = np.array([10.0, -5.0, 2.0])
    mark = np.array([90.0, 40.0, NAN])
    marks_row = np.empty(3)
    net, gross, short, error = nb.mark_at_close_nb(
        np.array([100.0, NAN, NAN]), np.array([99.0, 41.0, 7.0]), held, mark, marks_row
    )
    assert marks_row.tolist() == [100.0, 40.0, 7.0] and mark.tolist() == [100.0, 40.0, 7.0]
    assert (net, gross, short, error) == (1_000.0 - 200.0 + 14.0, 1_000.0 + 200.0 + 14.0, 200.0, 0)
    assert nb.mark_at_close_nb(np.array([0.0, 1.0, 1.0]), np.ones(3), held, mark, marks_row)[3] == nb.INVALID_INPUT


def test_carry_pays_interest_and_charges_borrow():
    interest, borrow, cash = nb.carry_nb(1_000.0, 500.0, 0.001, 0.002)
    assert (interest, borrow, cash) == (1.0, 1.0, 1_000.0)
    interest, _, cash = nb.carry_nb(-1_000.0, 0.0, 0.001, 0.002)  # negative cash pays the rate
    assert (interest, cash) == (-1.0, -1_001.0)


def test_read_decision():
    w = np.array([0.1, 0.2])
    assert nb.read_decision_nb(np.array([NAN, NAN]), w) == (False, 0)
    assert w.tolist() == [0.1, 0.2]  # no decision: the weights stay
    assert nb.read_decision_nb(np.array([0.5, NAN]), w) == (True, 0)
    assert w.tolist() == [0.5, 0.0]  # NaN inside a decision row is weight 0
    assert nb.read_decision_nb(np.array([np.inf, 0.1]), w) == (False, nb.INVALID_INPUT)
    assert w.tolist() == [0.5, 0.0]


def test_size_orders_records_skips_and_caps():
    fills, skips = nb.new_records_nb(4)
    delta, value = np.empty(3), np.empty(3)
    held = np.array([0.0, 3.0, 0.0])
    total, n_skip = nb.size_orders_nb(
        7,
        np.array([10.0, NAN, 20.0]),
        np.array([1_000.0, 1_000.0, 100.0]),
        np.array([0.5, 0.2, 0.3]),
        1_000.0,
        held,
        0.1,
        delta,
        value,
        skips,
        0,
    )
    assert total == pytest.approx(1.0, abs=1e-15)
    # A: 50 shares, under its cap of 100. B: no open, skipped. C: 15 shares capped to 10.
    assert delta.tolist() == [50.0, 0.0, 10.0]
    assert n_skip == 2
    assert skips[0][:2].tolist() == [7, 7] and skips[1][:2].tolist() == [1, 2]
    assert skips[4][:2].tolist() == [nb.NO_OPEN, nb.CAPPED]
    assert skips[3][:2].tolist() == [3.0, 0.0]


def test_result_codes_are_distinct_and_only_ok_is_false():
    """The kernels' error code and the skipped orders' reasons never share a value."""
    codes = {"OK": nb.OK, "INVALID_INPUT": nb.INVALID_INPUT, "NO_OPEN": nb.NO_OPEN, "CAPPED": nb.CAPPED}
    assert len(set(codes.values())) == len(codes)
    assert not nb.OK and nb.INVALID_INPUT  # callers test the error for truth
    assert nb.equity_at_open_nb(np.array([1.0]), np.zeros(1), np.full(1, NAN), 1_000.0)[1] == nb.OK
