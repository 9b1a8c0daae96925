"""The backtest as one compiled pass over sessions (numba), vectorbt-style.

Each session's sizing depends on the previous close, so the engine must walk sessions in
order. In NumPy every session costs ~10 array calls, and the marks, trade list and skipped
orders cost one more full pass over the T x N arrays each; here one loop reads each price and
weight once, writes positions and marks once, and appends fills as it makes them. Sums run in
one fixed order per session, so a run over T sessions and T runs over one session give the
same floats, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INVALID_INPUT = 1  # a non-positive or infinite price, or an infinite weight (the caller says which)


@njit(cache=True)
def simulate_nb(open_, close, decisions, cash, shares, pending, has_pending, last_close, cost_rate,
                positions, marks):
    """Walk T sessions from the account (cash, shares, pending weights, last marks), writing
    ``positions`` and ``marks`` (T, N; allocated by the caller: NumPy asks for huge pages).

    Returns (error, positions, marks, cash at each close, equity at each open,
    traded notional, costs, net and gross value of the holdings at each close, fills as
    (t, symbol, shares), skipped orders as (t, symbol, weight, shares held), the pending
    weights after the last close and whether there are any). ``error`` is INVALID_INPUT when
    a price is non-positive or infinite or a weight is infinite; the outputs are then partial.
    """
    T, N = open_.shape
    cash_close = np.empty(T)
    equity_open = np.empty(T)
    traded = np.zeros(T)
    costs = np.zeros(T)
    net_value = np.empty(T)
    gross_value = np.empty(T)
    # Room for a fill (or a skipped order) in every cell: only the pages written become resident
    # (the results are views), and growing arrays inside the loop cost more than the recursion.
    fill_t = np.empty(T * N, dtype=np.int64)
    fill_j = np.empty(T * N, dtype=np.int64)
    fill_d = np.empty(T * N)
    n_fill = 0
    skip_t = np.empty(T * N, dtype=np.int64)
    skip_j = np.empty(T * N, dtype=np.int64)
    skip_w = np.empty(T * N)
    skip_h = np.empty(T * N)
    n_skip = 0
    held = shares.copy()
    w = pending.copy()
    has_w = has_pending
    mark = last_close.copy()  # the mark after the previous close (NaN: never priced)
    error = 0
    for t in range(T):
        # Equity at the open: a held symbol without an open is marked at its last mark (0 if none).
        eo = cash
        for j in range(N):
            o = open_[t, j]
            if o == o:
                if not (o > 0.0 and o < np.inf):
                    error = INVALID_INPUT
                    break
                eo += held[j] * o
            else:
                m = mark[j]
                eo += held[j] * (m if m == m else 0.0)
        if error:
            break
        equity_open[t] = eo
        # Fills at the open of the pending weights; a symbol without an open cannot trade.
        if has_w:
            gross = 0.0
            net = 0.0
            for j in range(N):
                o = open_[t, j]
                if o == o:
                    target = w[j] * eo / o
                    price = o
                else:
                    target = held[j]
                    price = 0.0
                    if w[j] != 0.0 or held[j] != 0.0:
                        skip_t[n_skip] = t
                        skip_j[n_skip] = j
                        skip_w[n_skip] = w[j]
                        skip_h[n_skip] = held[j]
                        n_skip += 1
                delta = target - held[j]
                notional = delta * price
                gross += abs(notional)
                net += notional
                # Branch-free append: the slot is overwritten until a non-zero trade keeps it.
                fill_t[n_fill] = t
                fill_j[n_fill] = j
                fill_d[n_fill] = delta
                n_fill += delta != 0.0
                positions[t, j] = target
                held[j] = target
            cost = gross * cost_rate
            cash = cash - net - cost
            traded[t] = gross
            costs[t] = cost
        else:
            for j in range(N):
                positions[t, j] = held[j]
        # Marks after the close: the close, else the last mark, else (never priced) the open.
        net = 0.0
        gross = 0.0
        for j in range(N):
            c = close[t, j]
            if c == c:
                if not (c > 0.0 and c < np.inf):
                    error = INVALID_INPUT
                m = c
            else:
                m = mark[j]
                if m != m:
                    m = open_[t, j]
            mark[j] = m
            marks[t, j] = m
            v = held[j] * (m if m == m else 0.0)
            net += v
            gross += abs(v)
        if error:
            break
        net_value[t] = net
        gross_value[t] = gross
        cash_close[t] = cash
        # The decision at this close: an all-NaN row is no decision; inside a row NaN means 0.
        decided = False
        for j in range(N):
            d = decisions[t, j]
            if d == d:
                decided = True
                if d == np.inf or d == -np.inf:
                    error = INVALID_INPUT
        if error:
            break
        has_w = decided
        if decided:
            for j in range(N):
                d = decisions[t, j]
                w[j] = d if d == d else 0.0
    return (error, positions, marks, cash_close, equity_open, traded, costs, net_value, gross_value,
            fill_t[:n_fill], fill_j[:n_fill], fill_d[:n_fill],
            skip_t[:n_skip], skip_j[:n_skip], skip_w[:n_skip], skip_h[:n_skip],
            w, has_w)
