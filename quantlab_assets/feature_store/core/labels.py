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
from quantlab_assets.common.warehouse import Column, TableSchema
from quantlab_assets.data_curator.core.bars import adjusted_open

HORIZONS = (1, 5, 20)
MAX_FORWARD_SESSIONS = max(HORIZONS) + 1  # entry at D+1, exit at D+1+h


def label_column(h: int) -> str:
    """The labels column of the ``h``-session forward return (``fwd_ret_5``)."""
    return f"fwd_ret_{h}"


def exit_column(h: int) -> str:
    """The labels column of the ``h``-session exit date (``exit_date_5``)."""
    return f"exit_date_{h}"


LABELS = TableSchema(
    name="labels",
    description="Forward returns per (decision date, symbol): enter next open, exit h sessions later.",
    columns=(
        Column("date", "DATE", False, "decision date D (signal known at its close)"),
        Column("symbol", "VARCHAR", False),
        Column("entry_date", "DATE", False, "session D+1, whose open is the entry price"),
        *(
            Column(
                label_column(h),
                "DOUBLE",
                description=f"open(D+1+{h}) / open(D+1) - 1, adjusted; NULL until that bar exists",
            )
            for h in HORIZONS
        ),
        *(Column(exit_column(h), "DATE", False, f"session D+1+{h}") for h in HORIZONS),
    ),
)


def compute_labels(ohlcv: pd.DataFrame, start, end, horizons: Sequence[int] = HORIZONS) -> pd.DataFrame:
    """Labels for decision dates in [start, end] from long ohlcv rows (which should reach
    ``MAX_FORWARD_SESSIONS`` sessions after ``end`` when available). One row per (session, symbol) that has a
    bar on the decision date; NULL where the exit bar is not (yet) there."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    decisions = trading_days(lo, hi)
    if len(decisions) == 0 or ohlcv.empty:
        return pd.DataFrame(columns=LABELS.column_names)
    horizon_end = shift_sessions(hi, max(horizons) + 1)
    sessions = trading_days(lo, horizon_end)
    adj_open = adjusted_open(ohlcv)
    panel = pd.DataFrame({"date": pd.to_datetime(ohlcv["date"]), "symbol": ohlcv["symbol"], "adj_open": adj_open})
    wide = panel.pivot_table(index="date", columns="symbol", values="adj_open", aggfunc="first")
    wide = wide.reindex(sessions)
    present = panel[(panel["date"] >= lo) & (panel["date"] <= hi)][["date", "symbol"]]
    values = wide.to_numpy()
    n = len(decisions)
    entry = values[1 : n + 1]
    out = {}
    for h in horizons:
        exit_ = values[1 + h : n + 1 + h]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[h] = exit_ / entry - 1.0
    frames = []
    for j, symbol in enumerate(wide.columns):
        frame = pd.DataFrame({"date": decisions, "symbol": symbol, "entry_date": sessions[1 : n + 1]})
        for h in horizons:
            frame[label_column(h)] = out[h][:, j]
            frame[exit_column(h)] = sessions[1 + h : n + 1 + h]
        frames.append(frame)
    labels = pd.concat(frames, ignore_index=True).merge(present, on=["date", "symbol"], how="inner")
    return labels[LABELS.column_names].sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def pending_counts(labels: pd.DataFrame, horizons: Sequence[int] = HORIZONS) -> dict[str, int]:
    """``pending_fwd_ret_h``: label rows of horizon h whose exit bar is not ingested yet (NULL)."""
    return {f"pending_{label_column(h)}": int(labels[label_column(h)].isna().sum()) for h in horizons}
