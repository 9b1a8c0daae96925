"""Paper against the backtest: the reference book of the approved targets and the daily drift.

The reference is the approved targets backtested under the paper book's own conventions
(``core.orders``), with ideal fills: from the same capital on the paper account's first session,
decided at each close ``D`` (``target = w * E_D * (1 - cash_buffer) / close_D``, fractional
shares, no minimum trade), filled at the next session's raw open with no slippage and no fee,
sells before buys, each buy trimmed to the cash there is; dividends credited on the ex-date to
the shares held at the close before, splits multiplying shares; positions marked at their last
close. This is the convention of ``backtest_engine.core.engine`` except for one stated choice:
the engine sizes at the open (``w * E_open / open``), a broker needs share quantities before the
open, so the paper book and its reference size at the decision's close.

The drift of session ``t`` is the paper P&L minus the reference P&L; with ``h`` the paper's
shares and ``r`` the reference's after ``t - 1`` (split-adjusted), ``c`` the marks, ``o`` the
open, ``f`` and ``p`` the paper's fills and prices, ``q`` the shares the paper ordered and ``g``
the reference's fills, it is exactly the sum of

* carried: ``(h - r) . (c_t - c_{t-1})`` (earlier days' position differences),
* fill price: ``f . (o - p)``, costs: ``-fees``,
* missed: ``(f - q) . (c_t - o)`` (partial fills, rejects, expiries),
* sizing: ``(q - g) . (c_t - o)`` (rounding, minimum trade, refused orders),
* corporate: paper dividends minus the reference's,
* other: what is left, floating point and any person's adjustment after a break.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.execution.core.schema import ADJUSTMENT, BUY, DEPOSIT, DIVIDEND, FILL

DRIFT_PARTS = ("carried", "fill_price", "sizing", "costs", "missed", "corporate", "other")


def _matrix(bars: pd.DataFrame, column: str, days, symbols, fill) -> np.ndarray:
    if bars.empty:
        return np.full((len(days), len(symbols)), fill, dtype=float)
    wide = bars.pivot_table(index="date", columns="symbol", values=column, aggfunc="last", dropna=False)
    return wide.reindex(index=days, columns=symbols).fillna(fill).to_numpy(float)


def _marks(close: np.ndarray) -> np.ndarray:
    """Each day's last known close (NaN before the first)."""
    return pd.DataFrame(close).ffill().to_numpy(float)


class _Paper:
    """The ledger's entries per day as arrays over the symbols."""

    def __init__(self, ledger: pd.DataFrame, days: pd.DatetimeIndex, col: dict[str, int]):
        n = len(col)
        self.fills = np.zeros((len(days), n))
        self.notional = np.zeros((len(days), n))
        self.fees = np.zeros(len(days))
        self.dividends = np.zeros(len(days))
        self.other = np.zeros((len(days), n))  # adjustments (shares)
        self.deposits = np.zeros(len(days))
        self.cash_adjustments = np.zeros(len(days))
        at = days.get_indexer(pd.DatetimeIndex(ledger["date"]))
        for i, kind, sym, qty, price, cash, fee in zip(
            at, ledger["kind"], ledger["symbol"], ledger["qty"], ledger["price"], ledger["cash_delta"], ledger["fee"]
        ):
            if i < 0:
                continue
            if kind == FILL:
                self.fills[i, col[sym]] += qty
                self.notional[i, col[sym]] += qty * price
                self.fees[i] += fee
            elif kind == DIVIDEND:
                self.dividends[i] += cash
            elif kind == ADJUSTMENT and isinstance(sym, str):
                self.other[i, col[sym]] += qty
            elif kind == ADJUSTMENT:  # cash only
                self.cash_adjustments[i] += cash
            elif kind == DEPOSIT:
                self.deposits[i] += cash


def reference_and_drift(
    bars: pd.DataFrame,
    books: pd.DataFrame,
    ledger: pd.DataFrame,
    ordered: pd.DataFrame,
    days: pd.DatetimeIndex,
    cash_buffer: float = 0.0,
) -> pd.DataFrame:
    """Per session of ``days`` (from the paper account's first session): paper equity and cash,
    reference equity, the drift and its parts (see the module docstring).

    ``bars``: date, symbol, open, close, dividend, split_coefficient; ``books``: date, symbol,
    weight (approved targets); ``ledger``: the paper account's entries; ``ordered``: date (the
    decision's session), symbol, qty (signed) of the orders sent to the broker."""
    symbols = sorted(set(bars["symbol"]) | set(books["symbol"]) | set(ledger["symbol"].dropna()))
    col = {s: j for j, s in enumerate(symbols)}
    T, N = len(days), len(symbols)
    open_ = _matrix(bars, "open", days, symbols, np.nan)
    marks = _marks(_matrix(bars, "close", days, symbols, np.nan))
    div = _matrix(bars, "dividend", days, symbols, 0.0)
    ratio = _matrix(bars, "split_coefficient", days, symbols, 1.0)
    weights = _matrix(books, "weight", days, symbols, 0.0)
    has_book = pd.Index(days).isin(pd.DatetimeIndex(books["date"].unique())) if len(books) else np.zeros(T, bool)
    q = _matrix(ordered.assign(date=pd.to_datetime(ordered["date"])), "qty", days, symbols, 0.0)
    paper = _Paper(ledger, days, col)
    h, cash = np.zeros(N), 0.0  # the paper account
    r, rcash, pending = np.zeros(N), 0.0, np.zeros(N)  # the reference
    out = {k: np.zeros(T) for k in ("equity", "cash", "reference_equity", "drift", *DRIFT_PARTS)}
    prev_marks, prev_eq, prev_req = np.zeros(N), 0.0, 0.0
    for t in range(T):
        rcash += paper.deposits[t]
        r_div, h_div = float(r @ np.nan_to_num(div[t])), paper.dividends[t]
        rcash += r_div
        r, h = r * ratio[t], h * ratio[t]
        before = np.where(np.isfinite(prev_marks), prev_marks, 0.0) / ratio[t]
        o = np.where(np.isfinite(open_[t]), open_[t], before)
        g = _reference_fills(pending, o, np.isfinite(open_[t]), rcash)
        rcash -= float(g @ o)
        ordered_t = q[t - 1] if t else np.zeros(N)
        f = paper.fills[t]
        c = np.where(np.isfinite(marks[t]), marks[t], 0.0)
        parts = {
            "carried": float((h - r) @ (c - before)),
            "fill_price": float(f @ o - paper.notional[t].sum()),
            "missed": float((f - ordered_t) @ (c - o)),
            "sizing": float((ordered_t - g) @ (c - o)),
            "costs": -paper.fees[t],
            "corporate": h_div - r_div,
        }
        cash += paper.deposits[t] + h_div - paper.notional[t].sum() - paper.fees[t] + paper.cash_adjustments[t]
        h = h + f + paper.other[t]
        r = r + g
        eq, req = cash + float(h @ c), rcash + float(r @ c)
        gap = (eq - prev_eq - paper.deposits[t]) - (req - prev_req - paper.deposits[t])
        parts["other"] = gap - sum(parts.values())
        for k, v in parts.items():
            out[k][t] = v
        out["equity"][t], out["cash"][t], out["reference_equity"][t], out["drift"][t] = eq, cash, req, gap
        pending = np.zeros(N)
        if has_book[t]:
            target = weights[t] * (req * (1.0 - cash_buffer)) / np.where(c > 0, c, np.nan)
            pending = np.nan_to_num(target) - r
        prev_marks, prev_eq, prev_req = marks[t], eq, req
    return pd.DataFrame({"date": days, **out})


def _reference_fills(pending: np.ndarray, price: np.ndarray, tradable: np.ndarray, cash: float) -> np.ndarray:
    """Sells first, then buys in symbol order, each buy trimmed to the cash left."""
    g = np.where(tradable & (pending < 0), pending, 0.0)
    cash -= float(g @ np.where(tradable, price, 0.0))
    for j in np.flatnonzero(tradable & (pending > 0)):
        qty = min(pending[j], max(cash, 0.0) / price[j])
        g[j] = qty
        cash -= qty * price[j]
    return g


def ordered_frame(events: pd.DataFrame) -> pd.DataFrame:
    """date, symbol, qty (signed) of the orders the broker received (submitted events)."""
    sent = events[events["event"] == "submitted"].drop_duplicates("client_order_id")
    qty = np.where(sent["side"] == BUY, sent["qty"], -sent["qty"])
    return pd.DataFrame({"date": sent["date"], "symbol": sent["symbol"], "qty": qty.astype(float)})
