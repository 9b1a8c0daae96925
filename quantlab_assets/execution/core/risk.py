"""Pre-trade checks and the kill switch: which planned orders may go to the broker.

Rules, in this order, each refusing with a sentence that names the value and the limit:

* the switch: HALTED refuses every new order (only cancels pass); REDUCING refuses an order
  that does not bring the position closer to 0; an unresolved reconciliation break acts as HALTED;
* ``max_order_notional``: the order's notional at the price it was sized at;
* ``max_daily_notional``: the notional accepted this session so far plus this order's;
* ``max_volume_share``: the order's shares against the last session's volume in the symbol;
* ``price_collar``: the order's price against the last close, ``|price / last_close - 1|``;
* ``max_orders_per_session``: the order-rate limit, orders sent per strategy and session.

Orders are judged in the cycle's order (sells first), so reductions use the daily cap first.
A limit set to None is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.execution.core.orders import Order
from quantlab_assets.execution.core.schema import ACTIVE, HALTED, REDUCING, SWITCH_STATES


@dataclass(frozen=True)
class TradeLimits:
    max_order_notional: float | None = None
    max_daily_notional: float | None = None
    max_volume_share: float | None = None
    price_collar: float | None = None
    max_orders_per_session: int | None = None

    def __post_init__(self):
        for name in ("max_order_notional", "max_daily_notional", "max_volume_share", "price_collar"):
            value = getattr(self, name)
            if value is not None and (not np.isfinite(value) or value <= 0):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        if self.max_orders_per_session is not None and self.max_orders_per_session < 0:
            raise ValueError(f"max_orders_per_session must be >= 0 or None, got {self.max_orders_per_session!r}")


@dataclass(frozen=True)
class Verdict:
    order: Order
    allowed: bool
    reason: str | None = None


def _money(x: float) -> str:
    return f"{x:,.2f}"


def switch_refusal(order: Order, state: str, held: float, why: str) -> str | None:
    if state not in SWITCH_STATES:
        raise ValueError(f"kill switch state {state!r} is not one of {', '.join(SWITCH_STATES)}")
    if state == HALTED:
        return f"{order.side} {order.qty:g} {order.symbol}: the strategy is HALTED ({why}); only cancels are allowed"
    if state == REDUCING:
        after = held + order.signed_qty
        if not (abs(after) < abs(held) and after * held >= 0):
            return (
                f"{order.side} {order.qty:g} {order.symbol}: the strategy is REDUCING ({why}) and this order "
                f"takes the position from {held:g} to {after:g} shares, not closer to 0"
            )
    return None


def limit_refusal(order: Order, limits: TradeLimits, spent: float, sent: int, volume: float, last_close: float):
    what = f"{order.side} {order.qty:g} {order.symbol}"
    if limits.max_order_notional is not None and order.notional > limits.max_order_notional:
        return (
            f"{what}: notional {_money(order.notional)} exceeds the per-order cap {_money(limits.max_order_notional)}"
        )
    if limits.max_daily_notional is not None and spent + order.notional > limits.max_daily_notional:
        return (
            f"{what}: the session's notional would reach {_money(spent + order.notional)}, over the daily cap "
            f"{_money(limits.max_daily_notional)}"
        )
    if limits.max_volume_share is not None:
        if not (np.isfinite(volume) and volume > 0):
            return f"{what}: no session volume for {order.symbol} to hold it to {limits.max_volume_share:.2%} of"
        if order.qty / volume > limits.max_volume_share:
            return (
                f"{what}: {order.qty / volume:.2%} of the session's volume ({volume:,.0f} shares), over the limit "
                f"{limits.max_volume_share:.2%}"
            )
    if limits.price_collar is not None:
        if not (np.isfinite(last_close) and last_close > 0):
            return f"{what}: no last close for {order.symbol} to check the price collar against"
        move = abs(order.price / last_close - 1)
        if move > limits.price_collar:
            return (
                f"{what}: price {order.price:,.4f} is {move:.2%} from the last close {last_close:,.4f}, "
                f"outside the collar {limits.price_collar:.2%}"
            )
    if limits.max_orders_per_session is not None and sent + 1 > limits.max_orders_per_session:
        return f"{what}: order {sent + 1} of the session, over the order-rate limit {limits.max_orders_per_session}"
    return None


def pre_trade(
    orders: list[Order],
    limits: TradeLimits,
    state: str,
    why: str,
    held: pd.Series,
    volume: pd.Series,
    last_close: pd.Series,
    already_spent: float = 0.0,
    already_sent: int = 0,
) -> list[Verdict]:
    """Each order allowed or refused (with its sentence), in order; inputs are not changed."""
    out, spent, sent = [], already_spent, already_sent
    positions = {s: float(q) for s, q in held.items()}
    for order in orders:
        reason = switch_refusal(order, state, positions.get(order.symbol, 0.0), why)
        if reason is None:
            reason = limit_refusal(
                order,
                limits,
                spent,
                sent,
                float(volume.get(order.symbol, np.nan)),
                float(last_close.get(order.symbol, np.nan)),
            )
        out.append(Verdict(order, reason is None, reason))
        if reason is None:
            spent, sent = spent + order.notional, sent + 1
    return out


__all__ = ["ACTIVE", "HALTED", "REDUCING", "TradeLimits", "Verdict", "pre_trade"]
