"""Forward-return labels, aligned to the decision date with an explicit execution convention.

Convention (shared with the backtest): a signal known at the close of session D is traded at
the **open of the next session D+1**; the label over horizon h is what that trade earns when
it is closed at the open of session D+1+h:

    fwd_ret_h(D) = adj_open(D+1+h) / adj_open(D+1) - 1,   adj_open = open * adj_close / close

so it needs bars up to session D+1+h. Until that bar is ingested the label is NULL and its
``exit_date_h`` says when it becomes available: not yet available, never guessed.
Labels never enter the features table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.data_curator.core.bars import adjusted_open
from quantlab_assets.feature_store.core.schema import HORIZONS, LABELS, exit_column, label_column

MAX_FORWARD_SESSIONS = max(HORIZONS) + 1  # entry at D+1, exit at D+1+h


def compute_labels(ohlcv: pd.DataFrame, start, end, horizons: Sequence[int] = HORIZONS) -> pd.DataFrame:
    """Labels for decision dates in [start, end] from long ohlcv rows (which should reach
    ``MAX_FORWARD_SESSIONS`` sessions after ``end`` when available). One row per (session, symbol) that has a
    bar on the decision date; NULL where the exit bar is not (yet) there. Sorted by (symbol, date).

    A symbol without any priced bar (adjusted open NaN everywhere) has no rows; where a (date,
    symbol) has several bars, the first priced one is the price (and each bar its own row)."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    decisions = trading_days(lo, hi)
    if len(decisions) == 0 or ohlcv.empty:
        return pd.DataFrame(columns=LABELS.column_names)
    horizon_end = shift_sessions(hi, max(horizons) + 1)
    sessions = trading_days(lo, horizon_end)
    day = pd.DatetimeIndex(pd.to_datetime(ohlcv["date"]))
    symbol = ohlcv["symbol"].to_numpy(dtype=object)
    adj_open = np.asarray(adjusted_open(ohlcv), dtype=np.float64)
    priced = ~np.isnan(adj_open) & ~day.isna()
    symbols = pd.Index(pd.unique(symbol[priced])).sort_values()
    # (sessions x symbols) adjusted opens; the first priced bar of a (date, symbol) wins.
    ti, sj = sessions.get_indexer(day), symbols.get_indexer(symbol)
    rows = np.flatnonzero(priced & (ti >= 0))
    _, first = np.unique(ti[rows] * len(symbols) + sj[rows], return_index=True)
    rows = rows[first]
    wide = np.full((len(sessions), len(symbols)), np.nan)
    wide[ti[rows], sj[rows]] = adj_open[rows]
    # One row per bar dated on a decision date, in (symbol, date) order.
    t = decisions.get_indexer(day)
    keep = np.flatnonzero((t >= 0) & (sj >= 0) & (day >= lo) & (day <= hi))
    t, j = t[keep], sj[keep]
    order = np.lexsort((t, j))
    t, j = t[order], j[order]
    entry = wide[1 + t, j]
    out: dict[str, object] = {
        "date": decisions[t],
        "symbol": symbols.to_numpy(dtype=object)[j],
        "entry_date": sessions[1 + t],
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        for h in horizons:
            out[label_column(h)] = wide[1 + h + t, j] / entry - 1.0
    for h in horizons:
        out[exit_column(h)] = sessions[1 + h + t]
    return pd.DataFrame(out)[LABELS.column_names]


def pending_counts(labels: pd.DataFrame, horizons: Sequence[int] = HORIZONS) -> dict[str, int]:
    """``pending_fwd_ret_h``: label rows of horizon h whose exit bar is not ingested yet (NULL)."""
    return {f"pending_{label_column(h)}": int(labels[label_column(h)].isna().sum()) for h in horizons}


def pending_counts_by_day(
    labels: pd.DataFrame, horizons: Sequence[int] = HORIZONS
) -> dict[pd.Timestamp, dict[str, int]]:
    """``pending_counts`` of each decision date's rows, in one grouped pass (not a frame per date)."""
    columns = [label_column(h) for h in horizons]
    missing = labels[columns].isna().groupby(labels["date"]).sum()
    names = [f"pending_{c}" for c in columns]
    return {
        pd.Timestamp(day): {name: int(n) for name, n in zip(names, counts)}
        for day, counts in zip(missing.index, missing.to_numpy())
    }
