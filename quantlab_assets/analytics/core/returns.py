"""Return-series primitives the tearsheet's tables and its charts share (``tearsheet`` and
``tearsheet_charts`` both import them; neither imports the other's internals)."""

from __future__ import annotations

import numpy as np
import pandas as pd

ROLLING_WINDOWS = (126, 252)
TOP_NAMES = 10


def wealth_index(returns: pd.Series) -> pd.Series:
    """Growth of 1 invested before the first return (a NaN return compounds as 0)."""
    return (1.0 + returns.fillna(0.0)).cumprod()


def underwater(returns: pd.Series) -> pd.Series:
    """Drawdown from the running peak of the wealth index (peak at least the starting 1), <= 0."""
    wealth = wealth_index(returns)
    peak = np.maximum(np.maximum.accumulate(wealth.to_numpy()), 1.0)
    return pd.Series(wealth.to_numpy() / peak - 1.0, index=returns.index)


def value_at_risk(returns, cutoff: float = 0.05) -> float:
    """Historical daily VaR: the ``cutoff`` quantile of the returns (a loss is negative)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[~np.isnan(r)]
    return float(np.percentile(r, 100 * cutoff)) if len(r) else float("nan")


def contributors(by_name: pd.DataFrame, n: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the ``n`` names that made the most, best first; the ``n`` that lost the most, worst first)
    from :func:`attribution`. A winner is never listed as a detractor nor a loser as a
    contributor, however few names traded; a name at exactly 0 is neither."""
    n = TOP_NAMES if n is None else n
    top = by_name[by_name["pnl"] > 0].sort_values("pnl", ascending=False, kind="stable").head(n)
    bottom = by_name[by_name["pnl"] < 0].sort_values("pnl", ascending=True, kind="stable").head(n)
    return top.reset_index(), bottom.reset_index()
