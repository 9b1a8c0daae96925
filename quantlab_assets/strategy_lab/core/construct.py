"""From features to target weights: score, select, weight, constrain.

Every session is a row of (sessions x symbols) arrays and the kernels below walk the rows in
one compiled pass (the turnover limit makes each book depend on the previous one). Every
decision for session D uses only D's features (and, for the model signal, labels whose
exit bar is at or before D) plus the previous session's targets, so a daily run and a
backfill make the same decisions, bit for bit.

The kernels, ``decide`` and the turnover limit are here; judging a book against the limits is
``limits`` and choosing the universe is ``universe`` (their names are imported here too, so
callers of this module keep working).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from quantlab_assets.common.calendar import session_index, shift_sessions, trading_days
from quantlab_assets.strategy_lab.core.limits import EPS
from quantlab_assets.strategy_lab.core.limits import LIMIT_TOLERANCE as LIMIT_TOLERANCE
from quantlab_assets.strategy_lab.core.limits import constraint_violations as constraint_violations
from quantlab_assets.strategy_lab.core.limits import may_violate as may_violate
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.universe import universe_filter as universe_filter
from quantlab_assets.strategy_lab.core.universe import universe_of as universe_of

# Rebalance phases count sessions from one fixed anchor, never from a run's first date.
REBALANCE_ANCHOR = "1990-01-02"


def rebalance_mask(dates: pd.DatetimeIndex, spec: StrategySpec) -> np.ndarray:
    """True on the sessions where the strategy decides new targets."""
    freq = spec.rebalance.frequency
    if freq == "daily":
        return np.ones(len(dates), dtype=bool)
    if freq == "every_n":
        return session_index(dates, REBALANCE_ANCHOR) % spec.rebalance.n == 0
    if not len(dates):
        return np.zeros(0, dtype=bool)
    # First session of each ISO week / calendar month: compare with the previous session.
    sessions = trading_days(shift_sessions(dates.min(), -1), dates.max())
    prev = sessions[sessions.searchsorted(dates, "left") - 1]
    if freq == "weekly":
        return np.asarray(dates.isocalendar().week.values != prev.isocalendar().week.values) | np.asarray(
            (dates - prev).days > 7
        )
    return np.asarray((dates.month != prev.month) | (dates.year != prev.year))


def cross_sectional(values: pd.Series, transform: str) -> pd.Series:
    """z-score (population std) or percentile rank in (0, 1] across the symbols with values."""
    row = cross_sectional_rows(values.to_numpy(np.float64)[None, :], transform)[0]
    return pd.Series(row, index=values.index)


def cross_sectional_rows(values: np.ndarray, transform: str) -> np.ndarray:
    """``cross_sectional`` of every row of a (sessions x symbols) array at once."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return _rank_rows(values) if transform == "rank" else _zscore_rows(values)


# ---------------------------------------------------------------------------------------------
# Compiled kernels: one row per session, columns in symbol order. Sums over a variable set of
# names go through ``_sum``, numpy's pairwise summation replayed on the packed values, so a
# kernel row gives the same floats as the pandas/numpy expression it replaces (tests compare
# them with the per-session implementation bit for bit).


@njit(cache=True)
def _sum(a, n):
    """``a[:n].sum()`` as numpy computes it (pairwise, 8-way unrolled blocks of up to 128)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        r = a[:8].copy()
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _sum(a, n2) + _sum(a[n2:], n - n2)


@njit(cache=True)
def _zscore_rows(x):
    t, n = x.shape
    out = np.full((t, n), np.nan)
    buf = np.empty(n)
    for r in range(t):
        m = 0
        for j in range(n):
            if not np.isnan(x[r, j]):
                buf[m] = x[r, j]
                m += 1
        if m < 2:
            continue
        mean = _sum(buf, m) / m
        # The dispersion as pandas computes it when bottleneck is installed (it is, through
        # empyrical-reloaded): two plain sequential passes, not numpy's pairwise sums.
        seq = 0.0
        for i in range(m):
            seq += buf[i]
        seq_mean = seq / m
        sq = 0.0
        for i in range(m):
            d = buf[i] - seq_mean
            sq += d * d
        std = np.sqrt(sq / m)
        for j in range(n):
            if not np.isnan(x[r, j]):
                out[r, j] = (x[r, j] - mean) / std if std > 0 else 0.0
    return out


@njit(cache=True)
def _rank_rows(x):
    """Average rank among the values of the row divided by their count (pandas pct=True)."""
    t, n = x.shape
    out = np.full((t, n), np.nan)
    for r in range(t):
        idx = np.where(~np.isnan(x[r]))[0]
        m = len(idx)
        vals = x[r, idx]
        order = np.argsort(vals, kind="mergesort")
        i = 0
        while i < m:
            j = i
            while j + 1 < m and vals[order[j + 1]] == vals[order[i]]:
                j += 1
            avg = ((i + 1 + j + 1) * (j - i + 1) // 2) / (j - i + 1)
            for q in range(i, j + 1):
                out[r, idx[order[q]]] = avg / m
            i = j + 1
    return out


# Selection and weighting codes of the kernels (the spec's Literal values, in this order).
SELECTIONS = ("top_k", "all", "long_short_quantile", "threshold")
WEIGHTINGS = ("equal", "inverse_vol", "score")
# Why a decided book is flat: the note's sentence, filled with the count the kernel returns.
NOTE_TOO_FEW_SCORABLE, NOTE_TOO_FEW_SELECTED = 1, 2


def decide_params(spec: StrategySpec) -> np.ndarray:
    """The spec's selection, weighting and constraints as the kernels' parameter vector."""
    c, sel = spec.constraints, spec.selection
    nan = float("nan")
    return np.array(
        [
            SELECTIONS.index(sel.kind),
            sel.k or 0,
            sel.quantile or nan,
            nan if getattr(sel, "long_above", None) is None else sel.long_above,
            nan if getattr(sel, "short_below", None) is None else sel.short_below,
            WEIGHTINGS.index(spec.weighting.kind),
            c.gross_exposure,
            c.net_exposure,
            c.max_weight,
            c.min_names,
            nan if c.max_turnover is None else c.max_turnover,
            nan if getattr(sel, "long_below", None) is None else sel.long_below,
            nan if getattr(sel, "short_above", None) is None else sel.short_above,
            1.0 if getattr(sel, "between", "flat") == "hold" else 0.0,
        ],
        dtype=np.float64,
    )


@njit(cache=True)
def _cap_nb(w, m, side_total, cap, tmp):
    """Scale ``w[:m]`` to ``side_total`` with no name above ``cap``: excess flows to uncapped
    names (infeasible: the side stays below its total)."""
    if m == 0 or side_total <= 0:
        for i in range(m):
            w[i] = w[i] * 0.0
        return
    s = _sum(w, m)
    for i in range(m):
        w[i] = w[i] / s * side_total
    for _ in range(m):
        k = 0
        for i in range(m):
            if w[i] > cap + EPS:
                tmp[k] = w[i] - cap
                k += 1
        if k == 0:
            break
        excess = _sum(tmp, k)
        for i in range(m):
            if w[i] > cap + EPS:
                w[i] = cap
        k = 0
        for i in range(m):
            if w[i] < cap - EPS:
                tmp[k] = w[i]
                k += 1
        if k == 0:
            break
        free_sum = _sum(tmp, k)
        for i in range(m):
            if w[i] < cap - EPS:
                w[i] = w[i] + excess * w[i] / free_sum
    return


@njit(cache=True)
def _raw_nb(names, m, side, score, vol, wkind, out):
    """Unscaled weights of ``names[:m]``: equal, inverse volatility (missing or non-positive
    volatility takes the median of the others), or score-proportional (positive)."""
    if wkind == 0:
        for i in range(m):
            out[i] = 1.0
    elif wkind == 1:
        valid = np.empty(m)
        k = 0
        for i in range(m):
            v = vol[names[i]]
            out[i] = 1.0 / v if v > 0 else np.nan
            if not np.isnan(out[i]):
                valid[k] = out[i]
                k += 1
        fill = 1.0
        if k > 0:
            srt = np.sort(valid[:k])
            fill = srt[k // 2] if k % 2 == 1 else (srt[k // 2 - 1] + srt[k // 2]) / 2
        for i in range(m):
            if np.isnan(out[i]):
                out[i] = fill
    else:
        lo, hi = np.inf, -np.inf
        for i in range(m):
            s = score[names[i]] * side
            lo, hi = min(lo, s), max(hi, s)
        for i in range(m):
            out[i] = (score[names[i]] * side - lo) + (hi - lo + 1.0) * 0.05


@njit(cache=True)
def _threshold_sides_nb(order, value, p, prev, longs, shorts):
    """A threshold selection's longs and shorts (counts returned): long above ``p[3]`` or below
    ``p[11]``, short below ``p[4]`` or above ``p[12]`` (NaN thresholds compare False: only the
    spec's fields act); in between, flat, or (``p[13]``) the side the name had in ``prev``."""
    nl, ns = 0, 0
    for i in order:
        if value[i] > p[3] or value[i] < p[11]:
            longs[nl] = i
            nl += 1
        elif value[i] < p[4] or value[i] > p[12]:
            shorts[ns] = i
            ns += 1
        elif p[13] == 1.0 and prev[i] > EPS:
            longs[nl] = i
            nl += 1
        elif p[13] == 1.0 and prev[i] < -EPS:
            shorts[ns] = i
            ns += 1
    return nl, ns


@njit(cache=True)
def decide_nb(score, value, vol, p, out, prev):
    """One session's book from its scores (higher = better, NaN = not scorable) into ``out``.

    ``value`` is what a threshold selection compares (the selection feature); ``p`` is
    ``decide_params``; ``prev`` the book before (a threshold selection that holds between its
    thresholds keeps each name's side). Returns (note code, count): 0 when the book is as
    decided, else why it is flat.
    """
    n = len(score)
    kind, wkind = int(p[0]), int(p[5])
    gross, net, cap, min_names = p[6], p[7], p[8], int(p[9])
    out[:] = 0.0
    valid = np.where(~np.isnan(score))[0]
    m = len(valid)
    if m < min_names:
        return NOTE_TOO_FEW_SCORABLE, m
    # Stable ordering: by score descending, ties by symbol (the column order).
    order = valid[np.argsort(-score[valid], kind="mergesort")]
    longs = np.empty(n, np.int64)
    shorts = np.empty(n, np.int64)
    nl, ns = 0, 0
    if kind == 0:
        nl = min(int(p[1]), m)
        longs[:nl] = order[:nl]
    elif kind == 1:
        nl = m
        longs[:nl] = order
    elif kind == 2:
        nq = max(1, int(np.floor(m * p[2])))
        nl, ns = nq, nq
        longs[:nl] = order[:nq]
        shorts[:ns] = order[m - nq :]
    else:
        nl, ns = _threshold_sides_nb(order, value, p, prev, longs, shorts)
    if kind == 3:  # time-series: a side alone takes the whole gross
        long_total = (gross + net) / 2 if ns else gross
        short_total = (gross - net) / 2 if nl else gross
    else:
        long_total = (gross + net) / 2 if ns else gross
        short_total = (gross - net) / 2 if ns else 0.0
    raw = np.empty(n)
    tmp = np.empty(n)
    _raw_nb(longs, nl, 1.0, score, vol, wkind, raw)
    _cap_nb(raw, nl, long_total, cap, tmp)
    for i in range(nl):
        out[longs[i]] = raw[i]
    if ns:
        _raw_nb(shorts, ns, -1.0, score, vol, wkind, raw)
        _cap_nb(raw, ns, short_total, cap, tmp)
        for i in range(ns):
            out[shorts[i]] = -raw[i]
    held = 0
    for j in range(n):
        if abs(out[j]) > EPS:
            held += 1
    if held < min_names and not (kind == 3 and held == 0):  # a time-series book may be flat
        out[:] = 0.0
        return NOTE_TOO_FEW_SELECTED, held
    return 0, 0


@njit(cache=True)
def limit_turnover_nb(new, prev, forced, max_turnover, out):
    """``limit_turnover`` on arrays (NaN max_turnover = no limit); returns the turnover."""
    n = len(new)
    diff = np.empty(n)
    for j in range(n):
        diff[j] = abs(new[j] - prev[j])
    turnover = _sum(diff, n) / 2
    if np.isnan(max_turnover) or turnover + forced <= max_turnover + EPS or turnover <= EPS:
        out[:] = new
        return turnover + forced
    budget = max(max_turnover - forced, 0.0)
    for j in range(n):
        out[j] = prev[j] + (budget / turnover) * (new[j] - prev[j])
    return forced + budget


@njit(cache=True)
def book_nb(score, value, vol, rebalance, w0, forced, exits, p):
    """Every session's book in one pass: decided on rebalance rows, carried otherwise; the
    first row also sells the names that left the universe (``exits``, one-way ``forced``).

    Returns weights (T, N), turnover (T; NaN where nothing was decided) and the note code
    and count of each row.
    """
    t, n = score.shape
    weights = np.empty((t, n))
    turnover = np.full(t, np.nan)
    codes = np.zeros(t, np.int64)
    counts = np.zeros(t, np.int64)
    held = w0.copy()
    target = np.empty(n)
    for r in range(t):
        exit_now = exits and r == 0
        if rebalance[r] or exit_now:
            if rebalance[r]:
                codes[r], counts[r] = decide_nb(score[r], value[r], vol[r], p, target, held)
            else:
                target[:] = held  # off a rebalance the book holds; only the leavers are sold
            turnover[r] = limit_turnover_nb(target, held, forced if exit_now else 0.0, p[10], held)
        weights[r] = held
    return weights, turnover, codes, counts


@dataclass(frozen=True)
class Decision:
    weights: pd.Series  # per symbol of the universe, 0 where not held
    scores: pd.Series
    note: str = ""  # why the book is flat or trimmed, if it is


def note_text(code: int, count: int, spec: StrategySpec) -> str:
    min_names = spec.constraints.min_names
    if code == NOTE_TOO_FEW_SCORABLE:
        return f"{count} scorable names < min_names {min_names}: flat"
    if code == NOTE_TOO_FEW_SELECTED:
        return f"only {count} names selected < min_names {min_names}: flat"
    return ""


def decide(
    scores: pd.Series,
    vols: pd.Series | None,
    spec: StrategySpec,
    values: pd.Series | None = None,
    prev: pd.Series | None = None,
) -> Decision:
    """Selection, weighting and constraints for one session's scores (higher = better);
    ``values`` are what a threshold selection compares (default: the scores), ``prev`` the book
    before (default: flat)."""
    order = scores.index.argsort(kind="stable")
    s = scores.to_numpy(np.float64)[order]
    v = vols.reindex(scores.index) if vols is not None else pd.Series(np.nan, index=scores.index)
    x = values.reindex(scores.index) if values is not None else scores
    before = prev.reindex(scores.index).fillna(0.0) if prev is not None else pd.Series(0.0, index=scores.index)
    out = np.zeros(len(s))
    code, count = decide_nb(
        s,
        x.to_numpy(np.float64)[order],
        v.to_numpy(np.float64)[order],
        decide_params(spec),
        out,
        before.to_numpy(np.float64)[order],
    )
    weights = np.empty(len(s))
    weights[order] = out
    return Decision(pd.Series(weights, index=scores.index), scores, note_text(code, count, spec))


def limit_turnover(new: pd.Series, prev: pd.Series, max_turnover: float | None) -> tuple[pd.Series, float]:
    """Move from ``prev`` toward ``new`` by at most ``max_turnover`` one-way (Σ|Δw| / 2).

    Names of ``prev`` missing from ``new``'s index have left the universe: they are sold in full,
    and their exit is counted first; the rest of the book moves within what is left of the budget
    (if the exits alone exceed it, the rest holds and the returned turnover says so). A convex
    blend of two feasible books keeps every linear limit (caps, gross, net).
    """
    leaving = prev[~prev.index.isin(new.index)]
    forced = float(leaving.abs().sum() / 2)
    out = np.empty(len(new))
    turnover = limit_turnover_nb(
        new.to_numpy(np.float64),
        prev.reindex(new.index).fillna(0.0).to_numpy(np.float64),
        forced,
        np.nan if max_turnover is None else max_turnover,
        out,
    )
    return pd.Series(out, index=new.index), turnover
