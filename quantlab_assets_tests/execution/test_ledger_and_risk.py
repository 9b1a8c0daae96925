"""The ledger's replay, reconciliation and the pre-trade rules: hand-worked cases."""

from __future__ import annotations

import pandas as pd
import pytest

from quantlab_assets.execution.core.ledger import (
    Account,
    apply_entry,
    corporate_entries,
    deposit_entry,
    fill_entry,
    ledger_frame,
    new_fill,
    replay,
)
from quantlab_assets.execution.core.orders import Order
from quantlab_assets.execution.core.recon import CASH_SYMBOL, SHARE_TOLERANCE, reconcile
from quantlab_assets.execution.core.risk import TradeLimits, pre_trade
from quantlab_assets.execution.core.schema import ACTIVE, BUY, HALTED, REDUCING, SELL

D1, D2 = "2024-04-01", "2024-04-02"


def _entries() -> pd.DataFrame:
    rows = [
        deposit_entry(D1, "s", 10_000.0),
        fill_entry(D2, "s", "c1", "AAA", BUY, 100, 100, 50.0, 1.0),  # cash -5,001
        fill_entry(D2, "s", "c2", "BBB", BUY, 10, 10, 20.0, 0.0),  # cash -200
    ]
    actions = pd.DataFrame({"symbol": ["AAA", "BBB"], "dividend": [0.5, 0.0], "split_coefficient": [1.0, 2.0]})
    held = Account(0.0, {"AAA": 100.0, "BBB": 10.0})
    rows += corporate_entries("2024-04-03", "s", held, actions)  # AAA +50 cash; BBB 10 -> 20 shares
    rows.append(fill_entry("2024-04-03", "s", "c3", "AAA", SELL, 100, 100, 60.0, 0.0))  # closes AAA: +6,000
    frame = ledger_frame(rows)
    return frame.assign(seq=range(1, len(frame) + 1))


def test_replay_hand_worked():
    account = replay(_entries())
    assert account.cash == pytest.approx(10_000 - 5_001 - 200 + 50 + 6_000, abs=1e-9)
    assert account.shares == {"BBB": 20.0}  # split 2:1; AAA closed and dropped


def test_replay_equals_incremental_state():
    entries = _entries()
    incremental = Account()
    for i, row in enumerate(entries.itertuples()):
        apply_entry(incremental, row.kind, row.symbol, row.qty, row.cash_delta)
        again = replay(entries.iloc[: i + 1])
        assert again.cash == incremental.cash and again.shares == incremental.shares


def test_replay_upto_a_day_and_entry_ids_are_stable():
    assert replay(_entries(), upto=D2).shares == {"AAA": 100.0, "BBB": 10.0}
    a = fill_entry(D2, "s", "c1", "AAA", BUY, 40, 40, 50.0, 0.0)
    assert a["entry_id"] == fill_entry(D2, "s", "c1", "AAA", BUY, 40, 40, 50.0, 0.0)["entry_id"] == "c1:40"


def test_new_fill_from_cumulative_reports():
    assert new_fill(BUY, 0.0, 0.0, 40, 10.0) == (40, 10.0)
    # 40 at 10 recorded; the broker now says 100 at an average of 11: 60 more at 11.666...
    qty, price = new_fill(BUY, 40, 400.0, 100, 11.0)
    assert qty == 60 and price == pytest.approx(700 / 60, rel=1e-15)
    assert new_fill(BUY, 100, 1100.0, 100, 11.0) is None


def test_reconcile_names_symbol_and_quantities():
    ledger = Account(1000.0, {"AAA": 10.0})
    assert reconcile(ledger, {"AAA": 10.0 + SHARE_TOLERANCE / 2}, 1000.0).empty
    breaks = reconcile(ledger, {"AAA": 7.0, "ZZZ": 3.0}, 1000.5)
    assert list(breaks["symbol"]) == ["AAA", "ZZZ", CASH_SYMBOL]
    assert list(breaks["difference"]) == [-3.0, 3.0, 0.5]


def _order(symbol="AAA", side=BUY, qty=10.0, price=100.0):
    return Order(f"id-{symbol}-{side}", symbol, side, qty, price)


def _judge(orders, limits=None, state=ACTIVE, held=None, volume=None, close=None):
    limits = limits or TradeLimits()
    held = pd.Series(held or {}, dtype=float)
    volume = pd.Series(volume or {"AAA": 1e6, "BBB": 1e6}, dtype=float)
    close = pd.Series(close or {"AAA": 100.0, "BBB": 100.0}, dtype=float)
    return pre_trade(orders, limits, state, "test", held, volume, close)


def test_every_rule_refuses_naming_value_and_limit():
    (v,) = _judge([_order(qty=20)], TradeLimits(max_order_notional=1_000))
    assert not v.allowed and "notional 2,000.00 exceeds the per-order cap 1,000.00" in v.reason
    a, b = _judge([_order("AAA", qty=6), _order("BBB", qty=6)], TradeLimits(max_daily_notional=1_000))
    assert a.allowed and not b.allowed and "reach 1,200.00, over the daily cap 1,000.00" in b.reason
    (v,) = _judge([_order(qty=200)], TradeLimits(max_volume_share=0.01), volume={"AAA": 10_000})
    assert not v.allowed and "2.00% of the session's volume (10,000 shares), over the limit 1.00%" in v.reason
    (v,) = _judge([_order(price=112.0)], TradeLimits(price_collar=0.1))
    assert not v.allowed and "12.00% from the last close 100.0000, outside the collar 10.00%" in v.reason
    a, b = _judge([_order("AAA"), _order("BBB")], TradeLimits(max_orders_per_session=1))
    assert a.allowed and not b.allowed and "order 2 of the session, over the order-rate limit 1" in b.reason


def test_limits_at_their_value_pass():
    orders = [_order(qty=10)]
    limits = TradeLimits(1_000, 1_000, 10 / 1e6, 0.0 + 1e-12, 1)
    assert all(v.allowed for v in _judge(orders, limits))


def test_kill_switch_states():
    sell, buy = _order("AAA", SELL, 5), _order("AAA", BUY, 5)
    assert [v.allowed for v in _judge([sell, buy], state=HALTED, held={"AAA": 10})] == [False, False]
    assert "HALTED (test)" in _judge([sell], state=HALTED)[0].reason
    reducing = _judge([sell, buy, _order("AAA", SELL, 30)], state=REDUCING, held={"AAA": 10})
    assert [v.allowed for v in reducing] == [True, False, False]  # each from 10 held: 5 ok; 15 no; -20 no
    assert "from 10 to 15 shares, not closer to 0" in reducing[1].reason


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_order_notional must be a positive number"):
        TradeLimits(max_order_notional=-1)
