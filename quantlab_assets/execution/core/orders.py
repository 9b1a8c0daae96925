"""Orders for the next session's open from a day's approved book and the account at its close.

Convention (the one the reference backtest in ``core.compare`` follows too):

* Equity at D's close ``E = cash + sum(shares * close_D)`` sets every target:
  ``target = w * E * (1 - cash_buffer) / close_D`` (a symbol held but absent from the book has
  weight 0). With whole shares the target is truncated toward zero, so rounding never spends
  more cash than the fractional target would.
* An order is the share delta ``target - held``; a delta worth less than ``min_trade_value`` at
  the close is not sent, unless it closes the position.
* Sells come before buys, each group in symbol order. Priced at the close, the book's cash after
  all orders is ``E * (1 - (1 - cash_buffer) * sum(w)) >= 0`` for weights summing to at most 1
  (truncation only raises it). At the open the broker fills sells first and trims buys to the
  cash there is, so cash never goes negative.
* Client order id: ``ql-<YYYYMMDD>-<strategy[:10]>-<symbol[:10]>-<side>-<hash8>``, at most 48
  characters; the hash is of the full (strategy, session, symbol, side), so two long names
  sharing a prefix still differ. The same day re-planned gives the same ids: re-running a day
  submits nothing new (the cycle skips ids the ledger or the broker already has).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.versions import content_hash
from quantlab_assets.execution.core.schema import BUY, SELL

MAX_CLIENT_ORDER_ID = 48
_UNSAFE = re.compile(r"[^A-Za-z0-9._]")
# Weights summing to at most this are "at most 1" (the rounding of a sum of weights).
WEIGHT_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class OrderPolicy:
    """How targets become orders: whole or fractional shares, the smallest order, cash kept back."""

    fractional: bool = True
    min_trade_value: float = 0.0
    cash_buffer: float = 0.0

    def __post_init__(self):
        if not np.isfinite(self.min_trade_value) or self.min_trade_value < 0:
            raise ValueError(f"min_trade_value must be >= 0, got {self.min_trade_value!r}")
        if not 0 <= self.cash_buffer < 1:
            raise ValueError(f"cash_buffer must be in [0, 1), got {self.cash_buffer!r}")


@dataclass(frozen=True)
class Order:
    client_order_id: str
    symbol: str
    side: str
    qty: float  # > 0
    price: float  # the close it was sized at

    @property
    def signed_qty(self) -> float:
        return self.qty if self.side == BUY else -self.qty

    @property
    def notional(self) -> float:
        return self.qty * self.price


def client_order_id(strategy: str, session, symbol: str, side: str) -> str:
    day = pd.Timestamp(session).strftime("%Y%m%d")
    digest = content_hash(f"{strategy}|{day}|{symbol}|{side}")[:8]
    coid = f"ql-{day}-{_UNSAFE.sub('_', strategy)[:10]}-{_UNSAFE.sub('_', symbol)[:10]}-{side}-{digest}"
    assert len(coid) <= MAX_CLIENT_ORDER_ID
    return coid


def target_shares(weights: pd.Series, equity: float, prices: pd.Series, policy: OrderPolicy) -> pd.Series:
    """Shares per symbol for ``weights`` of ``equity`` at ``prices`` (see the module docstring)."""
    if not len(weights):
        return pd.Series(dtype=float)
    price = prices.reindex(weights.index).astype(float)
    bad = price[~(np.isfinite(price) & (price > 0))]
    if len(bad):
        raise ValueError(
            f"no usable close for {', '.join(map(str, bad.index[:5]))} to size its order: "
            "materialize ohlcv for that session first"
        )
    raw = weights.astype(float) * (equity * (1.0 - policy.cash_buffer)) / price
    return raw if policy.fractional else np.trunc(raw)


def plan_orders(
    strategy: str,
    session,
    weights: pd.Series,
    held: pd.Series,
    cash: float,
    closes: pd.Series,
    policy: OrderPolicy,
) -> list[Order]:
    """Orders (sells first, then buys, each in symbol order) that move ``held`` to ``weights``.

    ``weights``: symbol -> weight of the approved book of ``session``; ``held``: symbol -> shares
    at its close; ``closes``: symbol -> the close valuing and sizing them. Inputs are not changed.
    """
    weights = weights[weights.notna()].astype(float)
    if not np.isfinite(weights.to_numpy()).all():
        raise ValueError(f"approved_targets of {strategy} on {pd.Timestamp(session).date()}: a weight is infinite")
    symbols = sorted(set(weights.index) | set(held.index[held != 0]))
    w = weights.reindex(symbols, fill_value=0.0)
    h = held.reindex(symbols, fill_value=0.0).astype(float)
    missing = [s for s in symbols if not (np.isfinite(closes.get(s, np.nan)) and closes.get(s, 0) > 0)]
    if missing:
        raise ValueError(
            f"no close on or before {pd.Timestamp(session).date()} for {', '.join(missing[:5])}: "
            "materialize ohlcv for that session first"
        )
    equity = cash + float((h * closes.reindex(symbols)).sum())
    target = target_shares(w, equity, closes, policy)
    orders = []
    for symbol in symbols:
        delta = float(target[symbol] - h[symbol])
        closing = target[symbol] == 0 and h[symbol] != 0
        if delta == 0 or math.isclose(delta, 0.0, abs_tol=1e-12):
            continue
        if abs(delta) * float(closes[symbol]) < policy.min_trade_value and not closing:
            continue
        side = BUY if delta > 0 else SELL
        orders.append(Order(client_order_id(strategy, session, symbol, side), symbol, side, abs(delta), closes[symbol]))
    return sorted(orders, key=lambda o: (o.side == BUY, o.symbol))
