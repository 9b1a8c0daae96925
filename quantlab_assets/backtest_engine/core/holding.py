"""Holding rules: which names a decision leaves untouched (the engine applies them at the fill).

``rebalance`` (the default) trades every name of a decision to its target weight, so a held name
is resized as its weight drifts. ``until_change`` trades a name only when its target (side or
weight) differs from the previous session's target: the single-asset convention of
backtesting.py and backtrader ("hold until the signal flips"). ``band`` trades a name only when
its weight at the open is more than ``band`` away from its target. Under both rules a flip of
side or an exit always trades.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def keep_flags(targets: pd.DataFrame) -> pd.DataFrame:
    """date, symbol, keep: True where a symbol's target weight equals its target on the session
    before (the previous row of that symbol; the targets hold one row per session and symbol).

    The first row of a symbol has no previous target: False (it trades)."""
    frame = targets[["date", "symbol", "weight"]].sort_values(["symbol", "date"], kind="mergesort")
    weight = frame["weight"].to_numpy(np.float64)
    symbol = frame["symbol"].to_numpy()
    keep = np.zeros(len(frame), dtype=bool)
    if len(frame) > 1:
        keep[1:] = (symbol[1:] == symbol[:-1]) & (weight[1:] == weight[:-1])
    return pd.DataFrame({"date": frame["date"].to_numpy(), "symbol": symbol, "keep": keep})


def keep_array(book: np.ndarray) -> np.ndarray:
    """``keep_flags`` of a (sessions x symbols) book of consecutive sessions (first row: False)."""
    keep = np.zeros(book.shape, dtype=bool)
    keep[1:] = book[1:] == book[:-1]
    return keep


def holding_of(spec, targets: pd.DataFrame | None) -> tuple[pd.DataFrame | None, float | None]:
    """``run_backtest``'s holding argument for a strategy: (keep rows or None, band or None).
    ``targets`` must reach two sessions before the first decision (the pending one's previous)."""
    h = spec.holding
    if h.kind == "until_change":
        if targets is None:
            raise ValueError(f"strategy {spec.name!r}: holding 'until_change' needs the targets")
        return keep_flags(targets), None
    if h.kind == "band":
        return None, h.band
    return None, None
