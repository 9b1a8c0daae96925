"""KPIs as of every date (``backtest_kpis``): since the first row or the first invested session,
and over the trailing window, vectorised over dates; every row equals the scalar functions of
``kpis`` applied to the returns up to that date (tests hold them to it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from quantlab_assets.backtest_engine.core import kpi_base as kb
from quantlab_assets.backtest_engine.core.kpi_base import (
    KPI_COLUMNS,
    KPI_TABLE_COLUMNS,
    SINCE_START,
    TRADING_DAYS_PER_YEAR,
    scope_window,
    trailing_scope,
)


def _expanding_mean_std(x: np.ndarray):
    """Mean and sample std of x[:t+1] for every t (NaN skipped), from running sums.

    The sums are taken around the first present value (a typical value, and known at every
    later date, so no row depends on a later one), which keeps the cancellation in
    sum(d^2) - sum(d)^2 / k negligible. A prefix whose present values are all equal gets a
    standard deviation of exactly 0, as ``kb.nanstd`` gives.
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
    wealth = kb.wealth(r)
    out["total_return"] = wealth - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cagr"] = np.power(wealth, 1.0 / (n / ann)) - 1.0
    _, std = _expanding_mean_std(r)
    out["annual_volatility"] = std * np.sqrt(ann)
    adj = r - rf
    mean_adj, std_adj = _expanding_mean_std(adj)
    out["sharpe_ratio"] = kb.ratio(mean_adj, std_adj) * np.sqrt(ann)
    below = np.minimum(adj, 0.0)
    below_sq = np.where(np.isnan(below), 0.0, below * below)
    with np.errstate(invalid="ignore", divide="ignore"):
        downside = np.sqrt(np.cumsum(below_sq) / np.cumsum(~np.isnan(adj))) * np.sqrt(ann)
    out["sortino_ratio"] = kb.ratio(mean_adj * ann, downside)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    mdd = np.minimum.accumulate((wealth - peak) / peak)
    out["max_drawdown"] = mdd
    out["drawdown_duration"] = np.maximum.accumulate(kb.run_lengths(wealth < peak)).astype(np.float64)
    calmar = kb.ratio(out["cagr"], np.abs(mdd))
    out["calmar_ratio"] = np.where((mdd < 0) & np.isfinite(calmar), calmar, np.nan)
    out["hit_rate"] = kb.ratio(np.cumsum(r > 0).astype(np.float64), np.cumsum(~np.isnan(r)))
    out["turnover"] = kb.ratio(np.cumsum(np.where(np.isnan(turn), 0.0, turn)), np.cumsum(~np.isnan(turn)))
    out["excess_return"] = out["total_return"] - (kb.wealth(bench) - 1.0)
    mean_act, std_act = _expanding_mean_std(r - bench)
    out["information_ratio"] = kb.ratio(mean_act, std_act) * np.sqrt(ann)
    short = n < 2
    for name in ("annual_volatility", "sharpe_ratio", "sortino_ratio", "information_ratio"):
        out[name] = np.where(short, np.nan, out[name])
    return out


def _trailing(r, turn, bench, rf, ann, window):
    """Every KPI over each full window of ``window`` sessions (the scalar kernels applied to
    all windows at once: one window per column)."""
    R, U, B = (sliding_window_view(x, window).T for x in (r, turn, bench))
    return {
        "total_return": kb.total_return(R),
        "cagr": kb.cagr(R, ann),
        "annual_volatility": kb.annual_volatility(R, ann),
        "sharpe_ratio": kb.sharpe(R, rf, ann),
        "sortino_ratio": kb.sortino(R, rf, ann),
        "max_drawdown": kb.max_drawdown(R),
        "drawdown_duration": kb.drawdown_duration(R),
        "calmar_ratio": kb.calmar(R, ann),
        "hit_rate": kb.hit_rate(R),
        "turnover": kb.nanmean(U),
        "excess_return": kb.excess_return(R, B),
        "information_ratio": kb.information_ratio(R, B, ann),
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
