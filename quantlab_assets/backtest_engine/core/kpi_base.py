"""The base of the KPIs: periods and scopes, the input and output shapes, and the array kernels
(time along axis 0, one result per column) that ``kpis`` (the scalar functions) and ``kpi_table``
(the per-date table) apply. ``kpis`` documents the conventions and formulas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import SESSIONS_PER_YEAR

DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
ANNUALIZATION_FACTORS = {DAILY: SESSIONS_PER_YEAR, WEEKLY: 52, MONTHLY: 12}
TRADING_DAYS_PER_YEAR = ANNUALIZATION_FACTORS[DAILY]

SINCE_START = "since_start"
TRAILING_PREFIX = "trailing_"


def trailing_scope(window: int) -> str:
    """The ``scope`` value of KPIs over the last ``window`` sessions (``trailing_252``)."""
    return f"{TRAILING_PREFIX}{int(window)}"


def scope_window(scope: str) -> int | None:
    """Sessions a KPI scope covers: None for since start, ``n`` for ``trailing_<n>``."""
    if scope == SINCE_START:
        return None
    if not scope.startswith(TRAILING_PREFIX) or not scope[len(TRAILING_PREFIX) :].isdigit():
        raise ValueError(f"unknown KPI scope {scope!r}: expected {SINCE_START!r} or 'trailing_<sessions>'")
    return int(scope[len(TRAILING_PREFIX) :])


KPI_COLUMNS = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "drawdown_duration",
    "calmar_ratio",
    "hit_rate",
    "turnover",
    "excess_return",
    "information_ratio",
)
KPI_TABLE_COLUMNS = ("date", "scope", "sessions") + KPI_COLUMNS


def annualization_factor(period: str = DAILY, annualization: float | None = None) -> float:
    """Periods per year: ``annualization`` if given, else the factor of ``period``."""
    if annualization is not None:
        if not np.isfinite(annualization) or annualization <= 0:
            raise ValueError(f"annualization must be a positive number, got {annualization!r}")
        return float(annualization)
    try:
        return float(ANNUALIZATION_FACTORS[period])
    except (KeyError, TypeError):
        valid = ", ".join(repr(p) for p in ANNUALIZATION_FACTORS)
        raise ValueError(f"period {period!r} is not valid; valid periods: {valid}") from None


# --- input and output shapes ------------------------------------------------------------------


def columns(data):
    """A float64 array (time along axis 0) and a function shaping a per-column result like ``data``."""
    if isinstance(data, pd.DataFrame):
        columns = data.columns
        return data.to_numpy(dtype=np.float64), lambda v: pd.Series(v, index=columns)
    arr = np.asarray(data.to_numpy() if isinstance(data, pd.Series) else data, dtype=np.float64)
    if arr.ndim == 1:
        return arr, lambda v: float(v)
    if arr.ndim == 2:
        return arr, lambda v: np.asarray(v, dtype=np.float64)
    raise ValueError(f"returns must be 1-D or 2-D (time along axis 0), got {arr.ndim}-D")


def other(returns, arr: np.ndarray, other, name: str) -> np.ndarray:
    """``other`` (a scalar or a series like ``returns``) as an array broadcastable to ``arr``;
    pandas inputs are aligned on the returns' index (dates missing from it become NaN)."""
    if isinstance(other, (pd.Series, pd.DataFrame)) and isinstance(returns, (pd.Series, pd.DataFrame)):
        other = other.reindex(returns.index)
        if isinstance(other, pd.DataFrame) and isinstance(returns, pd.DataFrame):
            other = other.reindex(columns=returns.columns)
    values = np.asarray(other.to_numpy() if isinstance(other, (pd.Series, pd.DataFrame)) else other, dtype=np.float64)
    if values.ndim == 1 and arr.ndim == 2:
        values = values[:, None]
    try:
        np.broadcast_shapes(values.shape, arr.shape)
    except ValueError:
        raise ValueError(f"{name} of shape {values.shape} does not match returns of shape {arr.shape}") from None
    if values.ndim and values.shape[0] != arr.shape[0]:
        raise ValueError(f"{name} has {values.shape[0]} sessions, returns have {arr.shape[0]}")
    return values


def nan_result(arr: np.ndarray) -> np.ndarray:
    return np.full(arr.shape[1:], np.nan)


# --- array kernels: time along axis 0, one result per column ----------------------------------


def wealth(a: np.ndarray) -> np.ndarray:
    return np.cumprod(1.0 + np.where(np.isnan(a), 0.0, a), axis=0)


def nanmean(a: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, a, 0.0).sum(axis=0) / valid.sum(axis=0)


def nanstd(a: np.ndarray) -> np.ndarray:
    """Sample standard deviation skipping NaN; exactly 0 when every present value is equal."""
    valid = ~np.isnan(a)
    count = valid.sum(axis=0)
    mean = nanmean(a)
    dev = np.where(valid, a - mean, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt((dev * dev).sum(axis=0) / (count - 1))
        constant = np.fmax.reduce(a, axis=0) == np.fmin.reduce(a, axis=0)
    return np.where(constant & np.isfinite(std), 0.0, std)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def total_return(a):
    return wealth(a)[-1] - 1.0 if len(a) else nan_result(a)


def cagr(a, ann):
    if not len(a):
        return nan_result(a)
    with np.errstate(invalid="ignore"):
        return np.power(wealth(a)[-1], 1.0 / (len(a) / ann)) - 1.0


def annual_volatility(a, ann):
    return nanstd(a) * np.sqrt(ann) if len(a) >= 2 else nan_result(a)


def sharpe(a, rf, ann):
    if len(a) < 2:
        return nan_result(a)
    adj = a - rf
    return ratio(nanmean(adj), nanstd(adj)) * np.sqrt(ann)


def downside_risk(a, required, ann):
    if not len(a):
        return nan_result(a)
    below = np.minimum(a - required, 0.0)  # NaN stays NaN: skipped by the mean
    return np.sqrt(nanmean(below * below)) * np.sqrt(ann)


def sortino(a, required, ann):
    if len(a) < 2:
        return nan_result(a)
    return ratio(nanmean(a - required) * ann, downside_risk(a, required, ann))


def drawdowns(a):
    """Wealth, its running peak (which starts at 1) and the drawdown series."""
    w = wealth(a)
    peak = np.maximum.accumulate(np.maximum(w, 1.0), axis=0)
    return w, peak, (w - peak) / peak


def max_drawdown(a):
    return np.min(drawdowns(a)[2], axis=0) if len(a) else nan_result(a)


def run_lengths(flag: np.ndarray) -> np.ndarray:
    """Length of the current run of True at each row (0 where False)."""
    count = np.cumsum(flag, axis=0)
    base = np.maximum.accumulate(np.where(flag, 0, count), axis=0)
    return count - base


def drawdown_duration(a):
    if not len(a):
        return nan_result(a)
    wealth, peak, _ = drawdowns(a)
    return run_lengths(wealth < peak).max(axis=0).astype(np.float64)


def calmar(a, ann):
    mdd = max_drawdown(a)
    value = ratio(cagr(a, ann), np.abs(mdd))
    return np.where((mdd < 0) & np.isfinite(value), value, np.nan)


def hit_rate(a):
    valid = ~np.isnan(a)
    with np.errstate(invalid="ignore"):
        return ratio((a > 0).sum(axis=0).astype(np.float64), valid.sum(axis=0))


def excess_return(a, b):
    return total_return(a) - total_return(np.broadcast_to(b, a.shape))


def information_ratio(a, b, ann):
    if len(a) < 2:
        return nan_result(a)
    active = a - b
    return ratio(nanmean(active), nanstd(active)) * np.sqrt(ann)
