"""Reconciliation: the ledger's replay against the broker's positions and cash.

Tolerance: a position matches when ``|broker - ledger| <= SHARE_TOLERANCE`` shares (fractional
shares are reported to 1e-9 by Alpaca; 1e-6 leaves room for that rounding and nothing else);
cash matches when ``|broker - ledger| <= max(CASH_TOLERANCE, CASH_RELATIVE * |ledger cash|)``
(a cent, or 1e-9 of the balance: the float rounding of summing the same fills in another order).
A missing position on either side is a position of 0, never "unknown means flat": the broker
answering nothing at all is an error before this point.
"""

from __future__ import annotations

import pandas as pd

from quantlab_assets.execution.core.ledger import Account

SHARE_TOLERANCE = 1e-6
CASH_TOLERANCE = 0.01
CASH_RELATIVE = 1e-9
CASH_SYMBOL = "$CASH"


def reconcile(ledger: Account, broker_positions: dict[str, float], broker_cash: float) -> pd.DataFrame:
    """The breaks: symbol, ledger_qty, broker_qty, difference, tolerance (empty: reconciled)."""
    rows = []
    for symbol in sorted(set(ledger.shares) | set(broker_positions)):
        mine, theirs = ledger.shares.get(symbol, 0.0), float(broker_positions.get(symbol, 0.0))
        if abs(theirs - mine) > SHARE_TOLERANCE:
            rows.append((symbol, mine, theirs, theirs - mine, SHARE_TOLERANCE))
    tolerance = max(CASH_TOLERANCE, CASH_RELATIVE * abs(ledger.cash))
    if abs(float(broker_cash) - ledger.cash) > tolerance:
        rows.append((CASH_SYMBOL, ledger.cash, float(broker_cash), float(broker_cash) - ledger.cash, tolerance))
    return pd.DataFrame(rows, columns=["symbol", "ledger_qty", "broker_qty", "difference", "tolerance"])


def describe_breaks(breaks: pd.DataFrame, limit: int = 5) -> str:
    """One line naming each break's symbol and quantities."""
    parts = [
        f"{r.symbol}: ledger {r.ledger_qty:,.10g} vs broker {r.broker_qty:,.10g} (difference {r.difference:+,.10g}, "
        f"tolerance {r.tolerance:g})"
        for r in breaks.head(limit).itertuples()
    ]
    more = f" and {len(breaks) - limit} more" if len(breaks) > limit else ""
    return "; ".join(parts) + more
