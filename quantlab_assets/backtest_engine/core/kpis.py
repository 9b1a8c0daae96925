"""Performance KPIs of daily returns, empyrical-style, and the per-date KPI table.

Every function takes the main series first (simple, non-cumulative returns; ``turnover``
takes daily turnover) and options after. Inputs may be a 1-D array or Series (the result is a
float), a 2-D array (time along axis 0, one result per column, as an array) or a DataFrame (a
Series indexed by its columns). Inputs are never modified.

Conventions, the same as empyrical's so the tests can hold them to it:

* Too short gives NaN: fewer than 1 session for level KPIs, fewer than 2 for dispersion KPIs
  (volatility, Sharpe, Sortino, information ratio).
* A NaN return is a session without a return: it compounds as 0, is skipped by means and
  standard deviations, and still counts as a session for annualising the CAGR.
* Standard deviations are sample ones (ddof = 1). A series whose values are all equal has a
  standard deviation of exactly 0, so its Sharpe ratio is +-inf (or NaN for a zero mean).
* Annualisation: ``ANNUALIZATION_FACTORS`` (252 sessions a year for daily data); an explicit
  ``annualization`` overrides ``period``.

Formulas (r: returns, n: sessions, A: annualisation factor, W_t = prod_{s<=t}(1 + r_s)):

    total_return       = W_n - 1
    cagr               = W_n ** (A / n) - 1
    annual_volatility  = std(r) * sqrt(A)
    sharpe_ratio       = mean(r - rf) / std(r - rf) * sqrt(A)          (rf per period)
    sortino_ratio      = mean(r - m) * A / (sqrt(mean(min(r - m, 0)^2)) * sqrt(A))
    max_drawdown       = min_t (W_t / max(1, max_{s<=t} W_s) - 1)      (<= 0)
    drawdown_duration  = longest run of sessions with W_t below its running peak
    calmar_ratio       = cagr / |max_drawdown|                         (NaN without a drawdown)
    hit_rate           = share of sessions with r > 0 (among sessions with a return; 0 is a miss)
    turnover           = mean daily turnover (traded notional / equity)
    excess_return      = total_return(r) - total_return(b)             (b: benchmark returns)
    information_ratio  = mean(r - b) / std(r - b) * sqrt(A)

The code: ``kpi_base`` (periods, shapes, array kernels), this module (the scalar functions and
the Sharpe estimator family), ``kpi_table`` (the per-date table). Every name stays importable
from here.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from quantlab_assets.backtest_engine.core import kpi_base as kb
from quantlab_assets.backtest_engine.core.kpi_base import (
    ANNUALIZATION_FACTORS,
    DAILY,
    KPI_COLUMNS,
    KPI_TABLE_COLUMNS,
    MONTHLY,
    SINCE_START,
    TRADING_DAYS_PER_YEAR,
    WEEKLY,
    annualization_factor,
    scope_window,
    trailing_scope,
)
from quantlab_assets.backtest_engine.core.kpi_table import (
    add_pnl,
    first_invested,
    invested_kpi_table,
    kpi_table,
    kpis_of_range,
)

__all__ = [
    "ANNUALIZATION_FACTORS",
    "DAILY",
    "KPI_COLUMNS",
    "KPI_TABLE_COLUMNS",
    "MONTHLY",
    "SINCE_START",
    "TRADING_DAYS_PER_YEAR",
    "WEEKLY",
    "SharpeMoments",
    "add_pnl",
    "annual_volatility",
    "annualization_factor",
    "cagr",
    "calmar_ratio",
    "downside_risk",
    "drawdown_duration",
    "excess_return",
    "first_invested",
    "hit_rate",
    "information_ratio",
    "invested_kpi_table",
    "kpi_table",
    "kpis_of_range",
    "max_drawdown",
    "probabilistic_sharpe_from_moments",
    "probabilistic_sharpe_ratio",
    "rolling_annual_volatility",
    "rolling_sharpe_ratio",
    "scope_window",
    "sharpe_moments",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "trailing_scope",
    "turnover",
]
_run_lengths = kb.run_lengths  # kept for older callers; new code uses kpi_base.run_lengths


# --- public functions -------------------------------------------------------------------------


def total_return(returns):
    """Compounded return over the whole series: prod(1 + r) - 1."""
    arr, wrap = kb.columns(returns)
    return wrap(kb.total_return(arr))


def cagr(returns, period: str = DAILY, annualization: float | None = None):
    """Compound annual growth rate: (prod(1 + r)) ** (A / n) - 1, n counting every session."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.cagr(arr, ann))


def annual_volatility(returns, period: str = DAILY, annualization: float | None = None):
    """Sample standard deviation of the returns times sqrt(A)."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.annual_volatility(arr, ann))


def sharpe_ratio(returns, risk_free=0.0, period: str = DAILY, annualization: float | None = None):
    """Annualised Sharpe ratio: mean(r - rf) / std(r - rf) * sqrt(A); ``risk_free`` per period."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.sharpe(arr, kb.other(returns, arr, risk_free, "risk_free"), ann))


def downside_risk(returns, required_return=0.0, period: str = DAILY, annualization: float | None = None):
    """Annualised downside deviation below ``required_return``: sqrt(mean(min(r - m, 0)^2) * A)."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.downside_risk(arr, kb.other(returns, arr, required_return, "required_return"), ann))


def sortino_ratio(returns, required_return=0.0, period: str = DAILY, annualization: float | None = None):
    """Annualised mean excess over ``required_return`` divided by the annualised downside risk
    (+inf when no session falls below it)."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.sortino(arr, kb.other(returns, arr, required_return, "required_return"), ann))


def max_drawdown(returns):
    """Largest peak-to-trough loss of the compounded returns, as a negative number (0 if none).
    The starting value counts as a peak, so a first-session loss is a drawdown."""
    arr, wrap = kb.columns(returns)
    return wrap(kb.max_drawdown(arr))


def drawdown_duration(returns):
    """Longest stretch, in sessions, spent below a previous peak (the session that regains the
    peak is not counted; a drawdown still open at the end counts up to the last session)."""
    arr, wrap = kb.columns(returns)
    return wrap(kb.drawdown_duration(arr))


def calmar_ratio(returns, period: str = DAILY, annualization: float | None = None):
    """CAGR divided by the magnitude of the max drawdown; NaN when there is no drawdown."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.calmar(arr, ann))


def hit_rate(returns):
    """Share of sessions with a strictly positive return, among sessions with a return (NaN
    skipped); a flat session (r = 0) counts as a miss."""
    arr, wrap = kb.columns(returns)
    return wrap(kb.hit_rate(arr))


def turnover(daily_turnover):
    """Mean daily turnover (traded notional / equity at the open), NaN sessions skipped."""
    arr, wrap = kb.columns(daily_turnover)
    return wrap(kb.nanmean(arr) if len(arr) else kb.nan_result(arr))


def excess_return(returns, factor_returns):
    """Total return in excess of the benchmark's over the same sessions (a difference of
    compounded returns)."""
    arr, wrap = kb.columns(returns)
    return wrap(kb.excess_return(arr, kb.other(returns, arr, factor_returns, "factor_returns")))


def information_ratio(returns, factor_returns, period: str = DAILY, annualization: float | None = None):
    """Annualised information ratio: mean(r - b) / std(r - b) * sqrt(A) (empyrical's
    ``excess_sharpe`` times sqrt(A))."""
    ann = annualization_factor(period, annualization)
    arr, wrap = kb.columns(returns)
    return wrap(kb.information_ratio(arr, kb.other(returns, arr, factor_returns, "factor_returns"), ann))


# --- one Sharpe estimator family ----------------------------------------------------------------
# The probabilistic Sharpe ratio (the tearsheet), the deflated one (research/overfitting.py), the
# rolling Sharpe (the tearsheet's panels) and the annualised one above all start from the same
# per-period Sharpe ratio and moments, so the same returns give one set of probabilities.


class SharpeMoments(NamedTuple):
    """Per-period (not annualised) Sharpe ratio and the moments the probabilistic Sharpe ratio needs.

    ``sharpe`` = mean / sample std (ddof 1) of the returns present, the annualised
    ``sharpe_ratio`` over sqrt(A) (NaN below 2 returns or without dispersion: no probability
    exists for a constant series); ``skew`` and ``kurtosis`` (not excess) from population moments
    (Bailey and López de Prado's estimators; NaN without dispersion); ``n`` the returns present.
    """

    sharpe: float
    skew: float
    kurtosis: float
    n: int


def sharpe_moments(returns) -> SharpeMoments:
    """The per-period Sharpe ratio, skewness, kurtosis and count of a 1-D series (NaN skipped)."""
    a = np.asarray(returns.to_numpy() if isinstance(returns, pd.Series) else returns, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"sharpe_moments takes one series (1-D), got {a.ndim}-D")
    present = a[~np.isnan(a)]
    n = len(present)
    sd = float(kb.nanstd(a)) if n >= 2 else float("nan")
    sharpe = float(kb.nanmean(a)) / sd if sd > 0 and np.isfinite(sd) else float("nan")
    d = present - present.mean() if n else present
    var = float((d**2).mean()) if n else float("nan")
    if not var > 0:
        return SharpeMoments(sharpe, float("nan"), float("nan"), n)
    return SharpeMoments(sharpe, float((d**3).mean() / var**1.5), float((d**4).mean() / var**2), n)


_NORMAL = NormalDist()


def probabilistic_sharpe_from_moments(
    sharpe: float, n: int, skew: float, kurtosis: float, benchmark_sharpe: float = 0.0
) -> float:
    """P(true per-period Sharpe > ``benchmark_sharpe``) given an estimate from ``n`` returns
    (Bailey and López de Prado, "The Sharpe Ratio Efficient Frontier", 2012, eq. 9):

        PSR = Z( (SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR^2) )

    Z the standard normal CDF; NaN when an input is NaN, n < 2 or the denominator is not positive.
    The deflated Sharpe ratio is this with SR* = the expected maximum of the trials' Sharpe ratios."""
    den = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if n < 2 or not den > 0 or any(map(math.isnan, (sharpe, skew, kurtosis, benchmark_sharpe))):
        return float("nan")
    return _NORMAL.cdf((sharpe - benchmark_sharpe) * math.sqrt(n - 1) / math.sqrt(den))


def probabilistic_sharpe_ratio(returns, benchmark_sharpe: float = 0.0) -> float:
    """PSR of the returns against a per-period ``benchmark_sharpe`` (0: is the Sharpe positive?)."""
    m = sharpe_moments(returns)
    return probabilistic_sharpe_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, benchmark_sharpe)


def rolling_sharpe_ratio(returns, window: int, risk_free=0.0, period: str = DAILY, annualization=None) -> np.ndarray:
    """``sharpe_ratio`` of every ``window`` sessions ending at t (NaN before the first full
    window): the scalar function applied to all windows at once, one window per column."""
    return _rolling(returns, window, lambda R: kb.sharpe(R, risk_free, annualization_factor(period, annualization)))


def rolling_annual_volatility(returns, window: int, period: str = DAILY, annualization=None) -> np.ndarray:
    """``annual_volatility`` of every ``window`` sessions ending at t (NaN before a full window)."""
    return _rolling(returns, window, lambda R: kb.annual_volatility(R, annualization_factor(period, annualization)))


def _rolling(returns, window: int, kernel) -> np.ndarray:
    a = np.asarray(returns.to_numpy() if isinstance(returns, pd.Series) else returns, dtype=np.float64)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer of sessions, got {window!r}")
    out = np.full(len(a), np.nan)
    if len(a) >= window:
        out[window - 1 :] = kernel(sliding_window_view(a, window).T)
    return out
