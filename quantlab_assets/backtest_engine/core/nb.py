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
NO_OPEN = 1  # skipped order: the symbol has no open price that session
CAPPED = 2  # order cut to the participation cap; the rest is dropped


@njit(cache=True)
def fill_session_nb(
    t,
    open_row,
    volume_row,
    w,
    eo,
    held,
    cash,
    cost_rate,
    max_participation,
    delta,
    order_value,
    positions,
    fill_t,
    fill_j,
    fill_d,
    n_fill,
    skip_t,
    skip_j,
    skip_w,
    skip_h,
    skip_r,
    n_skip,
):
    """Fill the pending weights ``w`` at session ``t``'s open; returns (cash, traded, costs,
    n_fill, n_skip). ``held`` is updated in place.

    Targets are ``w * eo / open`` (``eo`` the equity at the open). Orders run in ascending
    order value ``w * eo - held * open`` (vectorbt's automatic call sequence: sells first, the
    largest buy last; ties in symbol order); each
    buy is trimmed so that cash after it and its cost stays at or above the floor
    ``min(0, eo * (1 - sum(w)))``: 0 for a book with weights summing to at most 1 (+1e-9 for
    rounding), the intended borrowing for a levered one. A symbol without an open keeps its position.
    """
    N = open_row.shape[0]
    total_w = 0.0
    for j in range(N):
        total_w += w[j]
        o = open_row[j]
        if o == o:
            d = w[j] * eo / o - held[j]
            if max_participation > 0.0:
                v = volume_row[j]
                cap = max_participation * v if v == v else 0.0
                if abs(d) > cap:
                    skip_t[n_skip] = t
                    skip_j[n_skip] = j
                    skip_w[n_skip] = w[j]
                    skip_h[n_skip] = held[j]
                    skip_r[n_skip] = CAPPED
                    n_skip += 1
                    d = cap if d > 0.0 else -cap
            delta[j] = d
            # The sort key is vectorbt's order value, target value minus held value: names
            # entering at equal weight tie exactly and keep symbol order (d * o would not).
            order_value[j] = w[j] * eo - held[j] * o if d != 0.0 else 0.0
        else:
            delta[j] = 0.0
            order_value[j] = 0.0
            if w[j] != 0.0 or held[j] != 0.0:
                skip_t[n_skip] = t
                skip_j[n_skip] = j
                skip_w[n_skip] = w[j]
                skip_h[n_skip] = held[j]
                skip_r[n_skip] = NO_OPEN
                n_skip += 1
    # A weight sum within 1e-9 of 1 is 1 (the rounding of a sum of weights is no leverage).
    floor = min(0.0, eo * (1.0 - total_w)) if total_w > 1.0 + 1e-9 else 0.0
    order = np.argsort(order_value, kind="mergesort")  # stable: ties keep symbol order
    traded = 0.0
    costs = 0.0
    for i in range(N):
        j = order[i]
        d = delta[j]
        if d == 0.0:
            continue
        o = open_row[j]
        n = d * o
        cost = abs(n) * cost_rate
        after = cash - n - cost
        if n > 0.0 and after < floor:  # a buy the cash above the floor cannot pay in full
            n = max(0.0, (cash - floor) / (1.0 + cost_rate))
            d = n / o
            if d == 0.0:
                continue
            n = d * o
            cost = n * cost_rate
            # Clamp the rounding dust of the trim (vectorbt rounds it to 0 the same way).
            after = max(cash - n - cost, floor)
        cash = after
        traded += abs(n)
        costs += cost
        held[j] += d
        fill_t[n_fill] = t
        fill_j[n_fill] = j
        fill_d[n_fill] = d
        n_fill += 1
    for j in range(N):
        positions[t, j] = held[j]
    return cash, traded, costs, n_fill, n_skip


@njit(cache=True)
def simulate_nb(  # noqa: C901 - one compiled session loop; splitting it is issue 10 point 9
    open_,
    close,
    volume,
    decisions,
    cash,
    shares,
    pending,
    has_pending,
    last_close,
    cost_rate,
    max_participation,
    borrow_rate,
    cash_rate,
    positions,
    marks,
):
    """Walk T sessions from the account (cash, shares, pending weights, last marks), writing
    ``positions`` and ``marks`` (T, N; allocated by the caller: NumPy asks for huge pages).

    ``volume`` (T, N) is the session's volume in share units of the prices (read only when
    ``max_participation > 0``); ``borrow_rate`` and ``cash_rate`` are per session.

    Returns (error, positions, marks, cash at each close, equity at each open,
    traded notional, trading costs, borrow fees, interest, net and gross value of the holdings
    at each close, fills as (t, symbol, shares), skipped or capped orders as (t, symbol,
    weight, shares held, reason), the pending weights after the last close and whether there
    are any). ``error`` is INVALID_INPUT when a price is non-positive or infinite or a weight is
    infinite; the outputs are then partial.
    """
    T, N = open_.shape
    cash_close = np.empty(T)
    equity_open = np.empty(T)
    traded = np.zeros(T)
    costs = np.zeros(T)
    borrow = np.zeros(T)
    interest = np.zeros(T)
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
    skip_r = np.empty(T * N, dtype=np.int64)
    n_skip = 0
    delta = np.empty(N)
    order_value = np.empty(N)
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
        if has_w:
            cash, traded[t], costs[t], n_fill, n_skip = fill_session_nb(
                t,
                open_[t],
                volume[t],
                w,
                eo,
                held,
                cash,
                cost_rate,
                max_participation,
                delta,
                order_value,
                positions,
                fill_t,
                fill_j,
                fill_d,
                n_fill,
                skip_t,
                skip_j,
                skip_w,
                skip_h,
                skip_r,
                n_skip,
            )
        else:
            for j in range(N):
                positions[t, j] = held[j]
        # Marks after the close: the close, else the last mark, else (never priced) the open.
        net = 0.0
        gross = 0.0
        short = 0.0
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
            if v < 0.0:
                short -= v
        if error:
            break
        # Carry for the session, charged at the close: interest on the cash held through it
        # (paid when negative) and the borrow fee on the shorts' value at the close.
        interest[t] = cash * cash_rate
        borrow[t] = short * borrow_rate
        cash = cash + interest[t] - borrow[t]
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
    return (
        error,
        positions,
        marks,
        cash_close,
        equity_open,
        traded,
        costs,
        borrow,
        interest,
        net_value,
        gross_value,
        fill_t[:n_fill],
        fill_j[:n_fill],
        fill_d[:n_fill],
        skip_t[:n_skip],
        skip_j[:n_skip],
        skip_w[:n_skip],
        skip_h[:n_skip],
        skip_r[:n_skip],
        w,
        has_w,
    )
