"""The paper account as a replay of its append-only ledger.

An entry moves cash and shares; :func:`apply_entry` is the one rule, :func:`replay` folds it over
the entries in ``seq`` order, so positions and cash after a restart are the entries' replay and
never a number kept somewhere else. Rules:

* deposit: ``cash += cash_delta``;
* fill and adjustment: ``shares[symbol] += qty``, ``cash += cash_delta`` (``-qty * price - fee``; an
  adjustment without a symbol moves cash only);
* dividend: ``cash += cash_delta`` (dividend per share times the shares held at the close before
  the ex-date, computed when the entry is made);
* split: ``shares[symbol] *= qty`` (the ratio); cash unchanged.

A position whose shares come back to within ``ZERO_SHARES`` of 0 is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab_assets.execution.core.schema import (
    ADJUSTMENT,
    BUY,
    DEPOSIT,
    DIVIDEND,
    ENTRY_KINDS,
    FILL,
    LEDGER,
    SPLIT,
)

ZERO_SHARES = 1e-9


@dataclass
class Account:
    """Cash and shares per symbol (mutable only through :func:`apply_entry`)."""

    cash: float = 0.0
    shares: dict[str, float] = field(default_factory=dict)

    def copy(self) -> Account:
        return Account(self.cash, dict(self.shares))

    def positions(self) -> pd.Series:
        return pd.Series(self.shares, dtype=float).sort_index()

    def value(self, prices: pd.Series) -> float:
        """Cash plus every position at ``prices`` (a missing price is an error, never a zero)."""
        missing = sorted(s for s in self.shares if not np.isfinite(prices.get(s, np.nan)))
        if missing:
            raise ValueError(f"no price to value the paper positions in {', '.join(missing[:5])}")
        return self.cash + sum(q * float(prices[s]) for s, q in sorted(self.shares.items()))


def apply_entry(account: Account, kind: str, symbol, qty: float, cash_delta: float) -> None:
    """Apply one ledger entry to ``account`` in place (see the module docstring)."""
    if kind not in ENTRY_KINDS:
        raise ValueError(f"ledger entry kind {kind!r} is not one of {', '.join(ENTRY_KINDS)}")
    account.cash += cash_delta
    if kind in (FILL, ADJUSTMENT) and symbol is not None and not (isinstance(symbol, float) and np.isnan(symbol)):
        account.shares[symbol] = account.shares.get(symbol, 0.0) + qty
    elif kind == SPLIT:
        if not np.isfinite(qty) or qty <= 0:
            raise ValueError(f"split of {symbol}: ratio {qty!r} must be a positive number")
        if symbol in account.shares:
            account.shares[symbol] *= qty
    if symbol in account.shares and abs(account.shares[symbol]) <= ZERO_SHARES:
        del account.shares[symbol]


def replay(entries: pd.DataFrame, upto=None) -> Account:
    """The account after every entry (dated on or before ``upto`` when given), in ``seq`` order."""
    account = Account()
    if len(entries):
        rows = entries.sort_values("seq", kind="stable")
        if upto is not None:
            rows = rows[pd.to_datetime(rows["date"]) <= pd.Timestamp(upto)]
        for kind, symbol, qty, cash in zip(rows["kind"], rows["symbol"], rows["qty"], rows["cash_delta"]):
            apply_entry(account, kind, symbol, float(qty), float(cash))
    return account


def entry(day, strategy, entry_id, kind, symbol=None, qty=0.0, price=None, cash_delta=0.0, fee=0.0, coid=None):
    """One ledger row (``seq`` and ``recorded_at`` are set when it is appended)."""
    return {
        "date": pd.Timestamp(day),
        "strategy": strategy,
        "entry_id": entry_id,
        "kind": kind,
        "symbol": symbol,
        "qty": float(qty),
        "price": None if price is None else float(price),
        "cash_delta": float(cash_delta),
        "fee": float(fee),
        "client_order_id": coid,
    }


def deposit_entry(day, strategy, amount: float) -> dict:
    return entry(day, strategy, f"{strategy}:deposit:{pd.Timestamp(day).date()}", DEPOSIT, cash_delta=amount)


def fill_entry(day, strategy, coid: str, symbol: str, side: str, cum_qty: float, qty: float, price: float, fee: float):
    """A fill of ``qty`` shares (> 0) bringing the order's filled total to ``cum_qty``: its id is
    the order's id and that total, so the same fill collected twice is one entry."""
    signed = qty if side == BUY else -qty
    return entry(day, strategy, f"{coid}:{cum_qty:.9g}", FILL, symbol, signed, price, -signed * price - fee, fee, coid)


def new_fill(side: str, recorded_qty: float, recorded_notional: float, filled_qty: float, avg_price):
    """(qty, price) of what a broker's cumulative ``filled_qty`` at ``avg_price`` adds to what the
    ledger holds (``recorded_qty`` shares for ``recorded_notional``), or None when nothing new."""
    qty = float(filled_qty) - recorded_qty
    if qty <= ZERO_SHARES or avg_price is None or not np.isfinite(avg_price):
        return None
    price = (float(filled_qty) * float(avg_price) - recorded_notional) / qty
    return qty, price


def corporate_entries(day, strategy: str, account: Account, actions: pd.DataFrame) -> list[dict]:
    """Dividend and split entries of session ``day`` for the positions ``account`` holds at the
    close before it; ``actions``: symbol, dividend, split_coefficient of that session."""
    out = []
    for row in actions.sort_values("symbol").itertuples(index=False):
        held = account.shares.get(row.symbol, 0.0)
        if held == 0:
            continue
        stamp = f"{strategy}:{pd.Timestamp(day).date()}:{row.symbol}"
        dividend, ratio = float(row.dividend or 0.0), float(row.split_coefficient or 1.0)
        if np.isfinite(dividend) and dividend != 0:
            out.append(entry(day, strategy, f"{stamp}:dividend", DIVIDEND, row.symbol, 0.0, dividend, held * dividend))
        if np.isfinite(ratio) and ratio != 1:
            out.append(entry(day, strategy, f"{stamp}:split", SPLIT, row.symbol, ratio))
    return out


def ledger_frame(rows: list[dict]) -> pd.DataFrame:
    cols = [c for c in LEDGER.column_names if c not in ("seq", "recorded_at")]
    return pd.DataFrame(rows, columns=cols)
