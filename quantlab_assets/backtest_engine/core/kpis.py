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
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from quantlab_assets.common.calendar import SESSIONS_PER_YEAR

DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
ANNUALIZATION_FACTORS = {DAILY: SESSIONS_PER_YEAR, WEEKLY: 52, MONTHLY: 12}
TRADING_DAYS_PER_YEAR = ANNUALIZATION_FACTORS[DAILY]

SINCE_START = "since_start"
_TRAILING = "trailing_"


def trailing_scope(window: int) -> str:
    """The ``scope`` value of KPIs over the last ``window`` sessions (``trailing_252``)."""
    return f"{_TRAILING}{int(window)}"


def scope_window(scope: str) -> int | None:
    """Sessions a KPI scope covers: None for since start, ``n`` for ``trailing_<n>``."""
    if scope == SINCE_START:
        return None
    if not scope.startswith(_TRAILING) or not scope[len(_TRAILING) :].isdigit():
        raise ValueError(f"unknown KPI scope {scope!r}: expected {SINCE_START!r} or 'trailing_<sessions>'")
    return int(scope[len(_TRAILING) :])


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


def _columns(data):
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


def _other(returns, arr: np.ndarray, other, name: str) -> np.ndarray:
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


def _nan_result(arr: np.ndarray) -> np.ndarray:
    return np.full(arr.shape[1:], np.nan)


# --- array kernels: time along axis 0, one result per column ----------------------------------


def _wealth(a: np.ndarray) -> np.ndarray:
    return np.cumprod(1.0 + np.where(np.isnan(a), 0.0, a), axis=0)


def _nanmean(a: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, a, 0.0).sum(axis=0) / valid.sum(axis=0)


def _nanstd(a: np.ndarray) -> np.ndarray:
    """Sample standard deviation skipping NaN; exactly 0 when every present value is equal."""
    valid = ~np.isnan(a)
    count = valid.sum(axis=0)
    mean = _nanmean(a)
    dev = np.where(valid, a - mean, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt((dev * dev).sum(axis=0) / (count - 1))
        constant = np.fmax.reduce(a, axis=0) == np.fmin.reduce(a, axis=0)
    return np.where(constant & np.isfinite(std), 0.0, std)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _total_return(a):
    return _wealth(a)[-1] - 1.0 if len(a) else _nan_result(a)


def _cagr(a, ann):
    if not len(a):
        return _nan_result(a)
    with np.errstate(invalid="ignore"):
        return np.power(_wealth(a)[-1], 1.0 / (len(a) / ann)) - 1.0


def _annual_volatility(a, ann):
    return _nanstd(a) * np.sqrt(ann) if len(a) >= 2 else _nan_result(a)


def _sharpe(a, rf, ann):
    if len(a) < 2:
        return _nan_result(a)
    adj = a - rf
    return _ratio(_nanmean(adj), _nanstd(adj)) * np.sqrt(ann)


def _downside_risk(a, required, ann):
    if not len(a):
        return _nan_result(a)
    below = np.minimum(a - required, 0.0)  # NaN stays NaN: skipped by the mean
    return np.sqrt(_nanmean(below * below)) * np.sqrt(ann)


def _sortino(a, required, ann):
    if len(a) < 2:
        return _nan_result(a)
    return _ratio(_nanmean(a - required) * ann, _downside_risk(a, required, ann))


def _drawdowns(a):
    """Wealth, its running peak (which starts at 1) and the drawdown series."""
    wealth = _wealth(a)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0), axis=0)
    return wealth, peak, (wealth - peak) / peak


def _max_drawdown(a):
    return np.min(_drawdowns(a)[2], axis=0) if len(a) else _nan_result(a)


def _run_lengths(flag: np.ndarray) -> np.ndarray:
    """Length of the current run of True at each row (0 where False)."""
    count = np.cumsum(flag, axis=0)
    base = np.maximum.accumulate(np.where(flag, 0, count), axis=0)
    return count - base


def _drawdown_duration(a):
    if not len(a):
        return _nan_result(a)
    wealth, peak, _ = _drawdowns(a)
    return _run_lengths(wealth < peak).max(axis=0).astype(np.float64)


def _calmar(a, ann):
    mdd = _max_drawdown(a)
    ratio = _ratio(_cagr(a, ann), np.abs(mdd))
    return np.where((mdd < 0) & np.isfinite(ratio), ratio, np.nan)


def _hit_rate(a):
    valid = ~np.isnan(a)
    with np.errstate(invalid="ignore"):
        return _ratio((a > 0).sum(axis=0).astype(np.float64), valid.sum(axis=0))


def _excess_return(a, b):
    return _total_return(a) - _total_return(np.broadcast_to(b, a.shape))


def _information_ratio(a, b, ann):
    if len(a) < 2:
        return _nan_result(a)
    active = a - b
    return _ratio(_nanmean(active), _nanstd(active)) * np.sqrt(ann)


# --- public functions -------------------------------------------------------------------------


def total_return(returns):
    """Compounded return over the whole series: prod(1 + r) - 1."""
    arr, wrap = _columns(returns)
    return wrap(_total_return(arr))


def cagr(returns, period: str = DAILY, annualization: float | None = None):
    """Compound annual growth rate: (prod(1 + r)) ** (A / n) - 1, n counting every session."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_cagr(arr, ann))


def annual_volatility(returns, period: str = DAILY, annualization: float | None = None):
    """Sample standard deviation of the returns times sqrt(A)."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_annual_volatility(arr, ann))


def sharpe_ratio(returns, risk_free=0.0, period: str = DAILY, annualization: float | None = None):
    """Annualised Sharpe ratio: mean(r - rf) / std(r - rf) * sqrt(A); ``risk_free`` per period."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_sharpe(arr, _other(returns, arr, risk_free, "risk_free"), ann))


def downside_risk(returns, required_return=0.0, period: str = DAILY, annualization: float | None = None):
    """Annualised downside deviation below ``required_return``: sqrt(mean(min(r - m, 0)^2) * A)."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_downside_risk(arr, _other(returns, arr, required_return, "required_return"), ann))


def sortino_ratio(returns, required_return=0.0, period: str = DAILY, annualization: float | None = None):
    """Annualised mean excess over ``required_return`` divided by the annualised downside risk
    (+inf when no session falls below it)."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_sortino(arr, _other(returns, arr, required_return, "required_return"), ann))


def max_drawdown(returns):
    """Largest peak-to-trough loss of the compounded returns, as a negative number (0 if none).
    The starting value counts as a peak, so a first-session loss is a drawdown."""
    arr, wrap = _columns(returns)
    return wrap(_max_drawdown(arr))


def drawdown_duration(returns):
    """Longest stretch, in sessions, spent below a previous peak (the session that regains the
    peak is not counted; a drawdown still open at the end counts up to the last session)."""
    arr, wrap = _columns(returns)
    return wrap(_drawdown_duration(arr))


def calmar_ratio(returns, period: str = DAILY, annualization: float | None = None):
    """CAGR divided by the magnitude of the max drawdown; NaN when there is no drawdown."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_calmar(arr, ann))


def hit_rate(returns):
    """Share of sessions with a strictly positive return, among sessions with a return (NaN
    skipped); a flat session (r = 0) counts as a miss."""
    arr, wrap = _columns(returns)
    return wrap(_hit_rate(arr))


def turnover(daily_turnover):
    """Mean daily turnover (traded notional / equity at the open), NaN sessions skipped."""
    arr, wrap = _columns(daily_turnover)
    return wrap(_nanmean(arr) if len(arr) else _nan_result(arr))


def excess_return(returns, factor_returns):
    """Total return in excess of the benchmark's over the same sessions (a difference of
    compounded returns)."""
    arr, wrap = _columns(returns)
    return wrap(_excess_return(arr, _other(returns, arr, factor_returns, "factor_returns")))


def information_ratio(returns, factor_returns, period: str = DAILY, annualization: float | None = None):
    """Annualised information ratio: mean(r - b) / std(r - b) * sqrt(A) (empyrical's
    ``excess_sharpe`` times sqrt(A))."""
    ann = annualization_factor(period, annualization)
    arr, wrap = _columns(returns)
    return wrap(_information_ratio(arr, _other(returns, arr, factor_returns, "factor_returns"), ann))


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
    sd = float(_nanstd(a)) if n >= 2 else float("nan")
    sharpe = float(_nanmean(a)) / sd if sd > 0 and np.isfinite(sd) else float("nan")
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
    return _rolling(returns, window, lambda R: _sharpe(R, risk_free, annualization_factor(period, annualization)))


def rolling_annual_volatility(returns, window: int, period: str = DAILY, annualization=None) -> np.ndarray:
    """``annual_volatility`` of every ``window`` sessions ending at t (NaN before a full window)."""
    return _rolling(returns, window, lambda R: _annual_volatility(R, annualization_factor(period, annualization)))


def _rolling(returns, window: int, kernel) -> np.ndarray:
    a = np.asarray(returns.to_numpy() if isinstance(returns, pd.Series) else returns, dtype=np.float64)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer of sessions, got {window!r}")
    out = np.full(len(a), np.nan)
    if len(a) >= window:
        out[window - 1 :] = kernel(sliding_window_view(a, window).T)
    return out


# --- the per-date table -----------------------------------------------------------------------


def _expanding_mean_std(x: np.ndarray):
    """Mean and sample std of x[:t+1] for every t (NaN skipped), from running sums.

    The sums are taken around the first present value (a typical value, and known at every
    later date, so no row depends on a later one), which keeps the cancellation in
    sum(d^2) - sum(d)^2 / k negligible. A prefix whose present values are all equal gets a
    standard deviation of exactly 0, as ``_nanstd`` gives.
    """
    valid = ~np.isnan(x)
    k = np.cumsum(valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = x[valid][0] if valid.any() else 0.0
        d = np.where(valid, x - center, 0.0)
        s1 = np.cumsum(d)
        s2 = np.cumsum(d * d)
        mean = center + s1 / k
        var = np.maximum(s2 - s1 * s1 / k, 0.0) / (k - 1)
        std = np.sqrt(var)
        constant = np.fmax.accumulate(x) == np.fmin.accumulate(x)
    std = np.where(constant & np.isfinite(std), 0.0, std)
    return np.where(k > 0, mean, np.nan), std


def _expanding(r, turn, bench, rf, ann):
    """Every KPI over r[:t+1] for every t, vectorised over t."""
    T = len(r)
    n = np.arange(1, T + 1, dtype=np.float64)
    out = {}
    wealth = _wealth(r)
    out["total_return"] = wealth - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cagr"] = np.power(wealth, 1.0 / (n / ann)) - 1.0
    _, std = _expanding_mean_std(r)
    out["annual_volatility"] = std * np.sqrt(ann)
    adj = r - rf
    mean_adj, std_adj = _expanding_mean_std(adj)
    out["sharpe_ratio"] = _ratio(mean_adj, std_adj) * np.sqrt(ann)
    below = np.minimum(adj, 0.0)
    below_sq = np.where(np.isnan(below), 0.0, below * below)
    with np.errstate(invalid="ignore", divide="ignore"):
        downside = np.sqrt(np.cumsum(below_sq) / np.cumsum(~np.isnan(adj))) * np.sqrt(ann)
    out["sortino_ratio"] = _ratio(mean_adj * ann, downside)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    mdd = np.minimum.accumulate((wealth - peak) / peak)
    out["max_drawdown"] = mdd
    out["drawdown_duration"] = np.maximum.accumulate(_run_lengths(wealth < peak)).astype(np.float64)
    calmar = _ratio(out["cagr"], np.abs(mdd))
    out["calmar_ratio"] = np.where((mdd < 0) & np.isfinite(calmar), calmar, np.nan)
    out["hit_rate"] = _ratio(np.cumsum(r > 0).astype(np.float64), np.cumsum(~np.isnan(r)))
    out["turnover"] = _ratio(np.cumsum(np.where(np.isnan(turn), 0.0, turn)), np.cumsum(~np.isnan(turn)))
    out["excess_return"] = out["total_return"] - (_wealth(bench) - 1.0)
    mean_act, std_act = _expanding_mean_std(r - bench)
    out["information_ratio"] = _ratio(mean_act, std_act) * np.sqrt(ann)
    short = n < 2
    for name in ("annual_volatility", "sharpe_ratio", "sortino_ratio", "information_ratio"):
        out[name] = np.where(short, np.nan, out[name])
    return out


def _trailing(r, turn, bench, rf, ann, window):
    """Every KPI over each full window of ``window`` sessions (the scalar kernels applied to
    all windows at once: one window per column)."""
    R, U, B = (sliding_window_view(x, window).T for x in (r, turn, bench))
    return {
        "total_return": _total_return(R),
        "cagr": _cagr(R, ann),
        "annual_volatility": _annual_volatility(R, ann),
        "sharpe_ratio": _sharpe(R, rf, ann),
        "sortino_ratio": _sortino(R, rf, ann),
        "max_drawdown": _max_drawdown(R),
        "drawdown_duration": _drawdown_duration(R),
        "calmar_ratio": _calmar(R, ann),
        "hit_rate": _hit_rate(R),
        "turnover": _nanmean(U),
        "excess_return": _excess_return(R, B),
        "information_ratio": _information_ratio(R, B, ann),
    }


def kpi_table(
    daily: pd.DataFrame, benchmark_ret=None, window: int | None = None, risk_free: float = 0.0
) -> pd.DataFrame:
    """KPIs as of every date: since the first row of ``daily`` and over the trailing window.

    Parameters
    ----------
    daily : DataFrame
        ``date`` and ``ret`` (daily returns), optionally ``turnover`` (the engine's equity frame).
    benchmark_ret : Series indexed by date, array of len(daily), or None
        Benchmark daily returns for ``excess_return`` and ``information_ratio`` (NaN without one;
        dates the benchmark lacks are sessions without a benchmark return).
    window : int, optional
        Trailing window in sessions; None means one year, ``TRADING_DAYS_PER_YEAR`` (252).
    risk_free : float
        Per-session risk-free return for the Sharpe ratio, also the Sortino required return.

    Returns
    -------
    DataFrame with ``KPI_TABLE_COLUMNS``: two rows per date, scope ``since_start`` and
    ``trailing_<window>``, sorted by date then scope. ``sessions`` is the number of sessions in
    the scope; trailing KPIs are NaN until a full window exists. The row for date t equals the
    scalar functions applied to the returns up to t (since start) or to the last ``window``
    returns up to t: no KPI ever uses a later date.
    """
    window = _trailing_window(window)
    order, dates, r, turn = _daily_series(daily)
    bench = _benchmark_series(benchmark_ret, dates, order)
    ann = float(TRADING_DAYS_PER_YEAR)
    T = len(dates)
    since = _expanding(r, turn, bench, risk_free, ann)
    if not bench.size or np.isnan(bench).all():
        since["excess_return"] = np.full(T, np.nan)
        since["information_ratio"] = np.full(T, np.nan)
    trail = {name: np.full(T, np.nan) for name in KPI_COLUMNS}
    if T >= window:
        for name, values in _trailing(r, turn, bench, risk_free, ann, window).items():
            trail[name][window - 1 :] = values
        if np.isnan(bench).all():
            trail["excess_return"][:] = np.nan
    n = np.arange(1, T + 1)
    blocks = [
        pd.DataFrame({"date": dates, "scope": SINCE_START, "sessions": n, **since}),
        pd.DataFrame({"date": dates, "scope": trailing_scope(window), "sessions": np.minimum(n, window), **trail}),
    ]
    table = pd.concat(blocks, ignore_index=True)
    table = table.sort_values(["date", "scope"], kind="stable").reset_index(drop=True)
    return table[list(KPI_TABLE_COLUMNS)]


def _trailing_window(window) -> int:
    window = TRADING_DAYS_PER_YEAR if window is None else window
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer number of sessions >= 2, got {window!r}")
    return int(window)


def _daily_series(daily: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """``daily`` sorted by date: the sort order, the dates, the returns and the turnover (NaN
    without a ``turnover`` column)."""
    if "date" not in daily.columns or "ret" not in daily.columns:
        raise ValueError("daily needs columns 'date' and 'ret'")
    order = np.argsort(pd.to_datetime(daily["date"]).to_numpy(), kind="stable")
    frame = daily.iloc[order]
    dates = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
    if dates.has_duplicates:
        raise ValueError("daily has duplicate dates")
    r = frame["ret"].to_numpy(dtype=np.float64)
    turn = frame["turnover"].to_numpy(dtype=np.float64) if "turnover" in frame.columns else np.full(len(frame), np.nan)
    return order, dates, r, turn


def _benchmark_series(benchmark_ret, dates: pd.DatetimeIndex, order: np.ndarray) -> np.ndarray:
    """The benchmark's return on each of ``dates`` (NaN without one): a Series is aligned by
    date, an array is taken in the rows' original order."""
    T = len(dates)
    if benchmark_ret is None:
        return np.full(T, np.nan)
    if isinstance(benchmark_ret, pd.Series):
        by_date = benchmark_ret.set_axis(pd.to_datetime(benchmark_ret.index))
        return by_date.reindex(dates).to_numpy(dtype=np.float64)
    bench = np.asarray(benchmark_ret, dtype=np.float64)
    if bench.shape != (T,):
        raise ValueError(f"benchmark_ret has shape {bench.shape}, expected ({T},) or a Series by date")
    return bench[order]


def add_pnl(table: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Gross and net P&L and costs paid per KPI row: since start, or over the trailing window."""
    if table.empty:  # no stored session yet (a first run on a holiday)
        return table.assign(pnl_gross=float("nan"), pnl_net=float("nan"), costs_paid=float("nan"))
    flows = history.set_index("date")[["pnl_gross", "pnl_net", "costs"]].rename(columns={"costs": "costs_paid"})
    parts = []
    for scope, rows in table.groupby("scope", sort=False):
        window = scope_window(str(scope))
        summed = flows.cumsum() if window is None else flows.rolling(window, min_periods=window).sum()
        parts.append(rows.join(summed, on="date"))
    return pd.concat(parts).sort_values(["date", "scope"], kind="stable").reset_index(drop=True)


def first_invested(daily: pd.DataFrame) -> pd.Timestamp | None:
    """The strategy's first invested session: the first date whose open filled an order
    (``turnover`` > 0; a book is only ever held after a fill). None if it never traded; the
    first date when ``daily`` has no ``turnover``."""
    if not len(daily):
        return None
    dates = pd.to_datetime(daily["date"])
    if "turnover" not in daily.columns:
        return pd.Timestamp(dates.min())
    traded = daily["turnover"].to_numpy(dtype=np.float64) > 0
    return pd.Timestamp(dates[traded].min()) if traded.any() else None


def invested_kpi_table(daily: pd.DataFrame, benchmark_ret: pd.Series | None = None, window=None) -> pd.DataFrame:
    """:func:`kpi_table` whose since-start rows count from the strategy's first invested session
    (:func:`first_invested`): a warm-up when the book is flat is no part of the strategy's
    figures. Since-start rows dated before it have ``sessions`` 0 and NaN KPIs; trailing rows are
    :func:`kpi_table`'s (the last ``window`` sessions, whatever they held). ``benchmark_ret``: a
    Series by date (or None)."""
    table = kpi_table(daily, benchmark_ret, window)
    first = first_invested(daily)
    dates = pd.to_datetime(daily["date"])
    if first is not None and first == dates.min():
        return table
    since = table["scope"] == SINCE_START
    before = since & ((table["date"] < first) if first is not None else True)
    table.loc[before, list(KPI_COLUMNS)] = np.nan
    table.loc[before, "sessions"] = 0
    if first is None:
        return table
    later = kpi_table(daily[dates.to_numpy() >= first.to_datetime64()], benchmark_ret, window)
    later = later[later["scope"] == SINCE_START]
    rows = table.index[since & (table["date"] >= first)]
    table.loc[rows, ["sessions", *KPI_COLUMNS]] = later[["sessions", *KPI_COLUMNS]].to_numpy()
    return table


def kpis_of_range(history: pd.DataFrame, start, end) -> pd.DataFrame:
    """KPI rows (every scope, with P&L) of the dates in [start, end], computed over the whole
    stored ``history`` of the backtest's equity: identical whether it came in one run or many.
    Since-start figures count from the first invested session (:func:`invested_kpi_table`)."""
    table = invested_kpi_table(history[["date", "ret", "turnover"]], history.set_index("date")["benchmark_ret"])
    table = add_pnl(table, history)
    return table[(table["date"] >= pd.Timestamp(start)) & (table["date"] <= pd.Timestamp(end))]
