"""The backtest as one compiled pass over sessions (numba), vectorbt-style.

Each session's sizing depends on the previous close, so the engine must walk sessions in
order. In NumPy every session costs ~10 array calls, and the marks, trade list and skipped
orders cost one more full pass over the T x N arrays each; here one loop reads each price and
weight once, writes positions and marks once, and appends fills as it makes them. Sums run in
one fixed order per session, so a run over T sessions and T runs over one session give the
same floats, bit for bit.

The loop is composed of small kernels, one rule each, as vectorbt composes its order
processing: ``equity_at_open_nb`` (valuation before trading), ``order_size_nb`` and
``participation_cap_nb`` (sizing), ``fill_price_nb`` (the price), ``order_cost_nb`` (costs),
``cash_floor_nb`` and ``trim_buy_nb`` (the cash convention), ``execute_order_nb`` (one order
against cash), ``fill_session_nb`` (a session's orders in vectorbt's call sequence),
``mark_at_close_nb`` and ``carry_nb`` (accounting at the close) and ``read_decision_nb`` (the
weights decided at the close). ``simulate_nb`` only sequences them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Result codes, one value each: the kernels' error (0 is none) and the skipped orders' reasons.
OK = 0
INVALID_INPUT = -1  # a non-positive or infinite price, or an infinite weight (the caller says which)
NO_OPEN = 1  # skipped order: the symbol has no open price that session
CAPPED = 2  # order cut to the participation cap; the rest is dropped
# A weight sum within this of 1 is 1: the rounding of a sum of weights is no leverage.
WEIGHT_SUM_TOLERANCE = 1e-9

# The steps below are inlined into the session loop when numba compiles it (at the level of its
# IR: the arithmetic is unchanged, and a cold compile takes ~2 s less than with calls); each
# can still be called, and is tested, on its own.
step = njit(cache=True, inline="always")

# Fills are kept in five preallocated arrays (session, symbol, shares, price, cost) and skipped
# orders in five (session, symbol, weight, shares held, reason); ``new_records_nb`` makes both.


@step
def new_records_nb(capacity):
    """Empty fill and skipped-order records with room for ``capacity`` entries each."""
    fills = (
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity),
        np.empty(capacity),
        np.empty(capacity),
    )
    skips = (
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity, dtype=np.int64),
        np.empty(capacity),
        np.empty(capacity),
        np.empty(capacity, dtype=np.int64),
    )
    return fills, skips


@step
def record_fill_nb(fills, n_fill, t, j, shares, price, cost):
    """Append a fill; returns the new count."""
    fills[0][n_fill] = t
    fills[1][n_fill] = j
    fills[2][n_fill] = shares
    fills[3][n_fill] = price
    fills[4][n_fill] = cost
    return n_fill + 1


@step
def record_skip_nb(skips, n_skip, t, j, weight, held, reason):
    """Append a skipped (or capped) order; returns the new count."""
    skips[0][n_skip] = t
    skips[1][n_skip] = j
    skips[2][n_skip] = weight
    skips[3][n_skip] = held
    skips[4][n_skip] = reason
    return n_skip + 1


# --- valuation and sizing ----------------------------------------------------------------------


@step
def equity_at_open_nb(open_row, held, mark, cash):
    """Cash plus the holdings at the open; a held symbol without an open is marked at its last
    mark (0 if never priced). Returns (equity, error): INVALID_INPUT for a non-positive or
    infinite open."""
    eo = cash
    for j in range(open_row.shape[0]):
        o = open_row[j]
        if o == o:
            if not (o > 0.0 and o < np.inf):
                return eo, INVALID_INPUT
            eo += held[j] * o
        else:
            m = mark[j]
            eo += held[j] * (m if m == m else 0.0)
    return eo, OK


@step
def fill_price_nb(open_row, j):
    """The price every order of a session fills at: the adjusted open (NaN: it cannot fill).
    Slippage is a cost (``order_cost_nb``), not a price shift."""
    return open_row[j]


@step
def order_size_nb(weight, eo, price, held):
    """Shares to trade to reach ``weight`` of the equity at the open ``eo``: ``w * eo / price - held``."""
    return weight * eo / price - held


@step
def participation_cap_nb(volume, max_participation):
    """Most shares an order may trade: ``max_participation`` of the session's volume (0 without one)."""
    return max_participation * volume if volume == volume else 0.0


@step
def order_value_nb(weight, eo, held, price):
    """vectorbt's order value, target value minus held value: the key of the call sequence.
    Names entering at equal weight tie exactly and keep symbol order (shares * price would not)."""
    return weight * eo - held * price


@step
def size_orders_nb(t, open_row, volume_row, w, eo, held, max_participation, delta, order_value, skips, n_skip):
    """Each symbol's order for weights ``w`` into ``delta`` (shares) and ``order_value`` (the sort
    key); orders without an open, and orders cut to the participation cap, go to ``skips``.
    Returns (sum of the weights, n_skip)."""
    total_w = 0.0
    for j in range(open_row.shape[0]):
        total_w += w[j]
        o = fill_price_nb(open_row, j)
        if o == o:
            d = order_size_nb(w[j], eo, o, held[j])
            if max_participation > 0.0:
                cap = participation_cap_nb(volume_row[j], max_participation)
                if abs(d) > cap:
                    n_skip = record_skip_nb(skips, n_skip, t, j, w[j], held[j], CAPPED)
                    d = cap if d > 0.0 else -cap
            delta[j] = d
            order_value[j] = order_value_nb(w[j], eo, held[j], o) if d != 0.0 else 0.0
        else:
            delta[j] = 0.0
            order_value[j] = 0.0
            if w[j] != 0.0 or held[j] != 0.0:
                n_skip = record_skip_nb(skips, n_skip, t, j, w[j], held[j], NO_OPEN)
    return total_w, n_skip


@step
def held_still_nb(weight, held, keep, band, price, eo):
    """Whether a holding rule leaves this name untouched at this fill: its position is on the
    target's side (a flip or an exit always trades) and either the strategy marked the target
    unchanged (``keep``: hold until the signal changes) or the weight at the open is within
    ``band`` of the target (a no-trade band; NaN: no band)."""
    if not ((weight > 0.0 and held > 0.0) or (weight < 0.0 and held < 0.0)):
        return False
    if keep:
        return True
    return band == band and abs(held * price / eo - weight) <= band


@step
def apply_holding_nb(open_row, w, eo, held, keep_row, band, delta, order_value):
    """Cancel the orders of the names a holding rule keeps (``held_still_nb``)."""
    for j in range(open_row.shape[0]):
        if delta[j] != 0.0 and held_still_nb(w[j], held[j], keep_row[j], band, open_row[j], eo):
            delta[j] = 0.0
            order_value[j] = 0.0


# --- costs and the cash convention -------------------------------------------------------------


@step
def order_cost_nb(notional, cost_rate):
    """Fee plus slippage of one fill: ``|notional| * cost_rate``."""
    return abs(notional) * cost_rate


@step
def cash_floor_nb(eo, total_w):
    """The least cash a buy may leave: 0 for weights summing to at most 1, the intended
    borrowing ``eo * (1 - sum(w))`` for a levered book."""
    return min(0.0, eo * (1.0 - total_w)) if total_w > 1.0 + WEIGHT_SUM_TOLERANCE else 0.0


@step
def trim_buy_nb(cash, floor, price, cost_rate):
    """Shares of the largest buy that, with its cost, leaves cash at the floor (0 if none)."""
    return max(0.0, (cash - floor) / (1.0 + cost_rate)) / price


@step
def execute_order_nb(shares, price, cash, floor, cost_rate):
    """Fill ``shares`` at ``price`` against ``cash``; a buy the cash above ``floor`` cannot pay in
    full is trimmed (``trim_buy_nb``). Returns (shares filled, notional, cost, cash after)."""
    notional = shares * price
    cost = order_cost_nb(notional, cost_rate)
    after = cash - notional - cost
    if notional > 0.0 and after < floor:
        shares = trim_buy_nb(cash, floor, price, cost_rate)
        if shares == 0.0:
            return 0.0, 0.0, 0.0, cash
        notional = shares * price
        cost = order_cost_nb(notional, cost_rate)
        # Clamp the rounding dust of the trim (vectorbt rounds it to 0 the same way).
        after = max(cash - notional - cost, floor)
    return shares, notional, cost, after


@step
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
    fills,
    n_fill,
    skips,
    n_skip,
    keep_row,
    band,
):
    """Fill the pending weights ``w`` at session ``t``'s open; returns (cash, traded, costs,
    n_fill, n_skip). ``held`` is updated in place. ``keep_row`` and ``band``: the holding rule
    (``apply_holding_nb``; all False and NaN: every name trades to its weight).

    Orders run in ascending order value (vectorbt's automatic call sequence: sells first, the
    largest buy last; ties in symbol order), each buy trimmed to the cash floor. A symbol
    without an open keeps its position.
    """
    total_w, n_skip = size_orders_nb(
        t, open_row, volume_row, w, eo, held, max_participation, delta, order_value, skips, n_skip
    )
    apply_holding_nb(open_row, w, eo, held, keep_row, band, delta, order_value)
    floor = cash_floor_nb(eo, total_w)
    order = np.argsort(order_value, kind="mergesort")  # stable: ties keep symbol order
    traded = 0.0
    costs = 0.0
    for i in range(open_row.shape[0]):
        j = order[i]
        if delta[j] == 0.0:
            continue
        price = fill_price_nb(open_row, j)
        d, notional, cost, after = execute_order_nb(delta[j], price, cash, floor, cost_rate)
        if d == 0.0:
            continue
        cash = after
        traded += abs(notional)
        costs += cost
        held[j] += d
        n_fill = record_fill_nb(fills, n_fill, t, j, d, price, cost)
    return cash, traded, costs, n_fill, n_skip


# --- the close ---------------------------------------------------------------------------------


@step
def mark_at_close_nb(close_row, open_row, held, mark, marks_row):
    """Marks after the close (the close, else the last mark, else, never priced, the open) into
    ``mark`` and ``marks_row``. Returns (net value, gross value, short value, error):
    INVALID_INPUT for a non-positive or infinite close."""
    net = 0.0
    gross = 0.0
    short = 0.0
    error = OK
    for j in range(close_row.shape[0]):
        c = close_row[j]
        if c == c:
            if not (c > 0.0 and c < np.inf):
                error = INVALID_INPUT
            m = c
        else:
            m = mark[j]
            if m != m:
                m = open_row[j]
        mark[j] = m
        marks_row[j] = m
        v = held[j] * (m if m == m else 0.0)
        net += v
        gross += abs(v)
        if v < 0.0:
            short -= v
    return net, gross, short, error


@step
def carry_nb(cash, short, cash_rate, borrow_rate):
    """The session's carry, charged at the close: interest on the cash held through it (paid
    when negative) and the borrow fee on the shorts' value. Returns (interest, borrow, cash)."""
    interest = cash * cash_rate
    borrow = short * borrow_rate
    return interest, borrow, cash + interest - borrow


@step
def read_decision_nb(decision_row, w):
    """The weights decided at this close into ``w``: an all-NaN row is no decision; inside a row
    NaN means 0. Returns (decided, error): INVALID_INPUT for an infinite weight (``w`` untouched)."""
    decided = False
    for j in range(decision_row.shape[0]):
        d = decision_row[j]
        if d == d:
            decided = True
            if d == np.inf or d == -np.inf:
                return False, INVALID_INPUT
    if decided:
        for j in range(decision_row.shape[0]):
            d = decision_row[j]
            w[j] = d if d == d else 0.0
    return decided, OK


# --- the session loop --------------------------------------------------------------------------


@njit(cache=True)
def simulate_nb(
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
    keep,
    pending_keep,
    band,
):
    """Walk T sessions from the account (cash, shares, pending weights, last marks), writing
    ``positions`` and ``marks`` (T, N; allocated by the caller: NumPy asks for huge pages).

    ``volume`` (T, N) is the session's volume in share units of the prices (read only when
    ``max_participation > 0``); ``borrow_rate`` and ``cash_rate`` are per session. ``keep`` (T, N)
    marks the names of each decision whose target is unchanged (hold until the signal changes),
    ``pending_keep`` those of the pending decision; ``band`` is the no-trade band (NaN: none).

    Returns (error, positions, marks, cash at each close, equity at each open,
    traded notional, trading costs, borrow fees, interest, net and gross value of the holdings
    at each close, fills as (t, symbol, shares, price, cost), skipped or capped orders as (t, symbol,
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
    fills, skips = new_records_nb(T * N)
    n_fill = 0
    n_skip = 0
    delta = np.empty(N)
    order_value = np.empty(N)
    held = shares.copy()
    w = pending.copy()
    kw = pending_keep.copy()
    has_w = has_pending
    mark = last_close.copy()  # the mark after the previous close (NaN: never priced)
    error = OK
    for t in range(T):
        eo, error = equity_at_open_nb(open_[t], held, mark, cash)
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
                fills,
                n_fill,
                skips,
                n_skip,
                kw,
                band,
            )
        positions[t] = held
        net_value[t], gross_value[t], short, error = mark_at_close_nb(close[t], open_[t], held, mark, marks[t])
        if error:
            break
        interest[t], borrow[t], cash = carry_nb(cash, short, cash_rate, borrow_rate)
        cash_close[t] = cash
        decided, error = read_decision_nb(decisions[t], w)
        if error:
            break
        if decided:
            kw[:] = keep[t]
        has_w = decided
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
        (fills[0][:n_fill], fills[1][:n_fill], fills[2][:n_fill], fills[3][:n_fill], fills[4][:n_fill]),
        (skips[0][:n_skip], skips[1][:n_skip], skips[2][:n_skip], skips[3][:n_skip], skips[4][:n_skip]),
        w,
        has_w,
    )
