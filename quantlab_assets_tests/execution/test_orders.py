"""Orders from a book and an account at the close: hand-worked cases and the invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.execution.core.orders import MAX_CLIENT_ORDER_ID, OrderPolicy, client_order_id, plan_orders
from quantlab_assets.execution.core.schema import BUY, SELL

DAY = "2024-04-01"


def _plan(weights, held, cash, closes, **policy):
    return plan_orders(
        "s",
        DAY,
        pd.Series(weights, dtype=float),
        pd.Series(held, dtype=float),
        cash,
        pd.Series(closes),
        OrderPolicy(**policy),
    )


def test_hand_worked_rebalance_sells_first_then_buys():
    # Equity = 1,000 cash + 10 AAA x 50 = 1,500. Targets: AAA 20% -> 300 / 50 = 6 shares (sell 4);
    # BBB 50% -> 750 / 25 = 30 shares (buy 30); CCC held 5, not in the book -> sell 5 (at 20: 100).
    orders = _plan({"AAA": 0.2, "BBB": 0.5}, {"AAA": 10, "CCC": 5}, 1000.0 - 100.0, {"AAA": 50, "BBB": 25, "CCC": 20})
    assert [(o.symbol, o.side, o.qty) for o in orders] == [("AAA", SELL, 4), ("CCC", SELL, 5), ("BBB", BUY, 30)]
    assert all(o.client_order_id.startswith("ql-20240401-s-") for o in orders)


def test_whole_shares_truncate_toward_zero_and_min_trade_skips_small_orders():
    # Equity 1,000; AAA 33% at 30 -> 11.0 shares; BBB 1% at 7 -> 1.43 -> 1 share worth 7 < min 10: skipped.
    orders = _plan({"AAA": 0.33, "BBB": 0.01}, {}, 1000.0, {"AAA": 30, "BBB": 7}, fractional=False, min_trade_value=10)
    assert [(o.symbol, o.qty) for o in orders] == [("AAA", 11.0)]


def test_closing_a_position_is_never_skipped_by_the_minimum():
    orders = _plan({}, {"AAA": 0.1}, 1000.0, {"AAA": 30}, min_trade_value=100)
    assert [(o.symbol, o.side, o.qty) for o in orders] == [("AAA", SELL, 0.1)]


def test_cash_buffer_keeps_cash_back():
    orders = _plan({"AAA": 1.0}, {}, 1000.0, {"AAA": 10}, cash_buffer=0.05)
    assert orders[0].qty == pytest.approx(95.0, rel=1e-15)


def test_missing_close_is_refused_naming_the_symbol():
    with pytest.raises(ValueError, match="no close on or before 2024-04-01 for BBB"):
        _plan({"AAA": 0.5, "BBB": 0.5}, {}, 1000.0, {"AAA": 10})


def test_client_order_id_is_deterministic_short_and_distinct():
    a = client_order_id("a_very_long_strategy_name_one", DAY, "BRK.B", BUY)
    assert a == client_order_id("a_very_long_strategy_name_one", DAY, "BRK.B", BUY)
    assert len(a) <= MAX_CLIENT_ORDER_ID
    # Same 10-character prefix, different strategies: the hash keeps them apart.
    assert a != client_order_id("a_very_long_strategy_name_two", DAY, "BRK.B", BUY)
    assert a != client_order_id("a_very_long_strategy_name_one", "2024-04-02", "BRK.B", BUY)
    assert len(client_order_id("x" * 48, DAY, "Y" * 30, SELL)) <= MAX_CLIENT_ORDER_ID


def test_inputs_are_not_changed():
    w, h, c = pd.Series({"AAA": 0.5}), pd.Series({"BBB": 3.0}), pd.Series({"AAA": 10.0, "BBB": 5.0})
    copies = (w.copy(), h.copy(), c.copy())
    plan_orders("s", DAY, w, h, 100.0, c, OrderPolicy(fractional=False))
    for a, b in zip((w, h, c), copies):
        pd.testing.assert_series_equal(a, b)


@pytest.mark.parametrize("seed", range(300))
def test_cash_never_negative_at_the_sizing_prices(seed):
    """Weights summing to at most 1: after every order at the close it was sized at, cash >= 0."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    w = rng.random(n) * (rng.random() < 0.3 or rng.random())
    w = w / w.sum() if w.sum() > 1 else w
    symbols = [f"S{i}" for i in range(6)]
    held = rng.random(6) * 500 * (rng.random(6) < 0.6)
    prices = 0.5 + rng.random(6) * 500
    cash = float(rng.random() * 1e5)
    policy = OrderPolicy(fractional=bool(rng.random() < 0.5), cash_buffer=float(rng.random() * 0.2))
    orders = plan_orders(
        "s",
        DAY,
        pd.Series(w, index=symbols[:n]),
        pd.Series(held, index=symbols),
        cash,
        pd.Series(prices, index=symbols),
        policy,
    )
    after = cash - sum(o.signed_qty * o.price for o in orders)
    equity = cash + float(np.dot(held, prices))
    assert after >= -1e-9 * max(equity, 1.0)
    sides = [o.side for o in orders]
    assert sides == sorted(sides, key=lambda s: s == BUY)  # every sell before any buy
    assert len({o.client_order_id for o in orders}) == len(orders)
