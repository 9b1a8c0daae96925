"""The tearsheet's statistics: scalar figures, drawdown episodes, calendar and rolling tables, the
book over time and P&L by name (numpy/pandas over the stored tables, no rendering).

Conventions (the same as ``kpis``): ``returns`` are simple daily returns indexed by date, 252
sessions a year, sample standard deviations (ddof = 1), a wealth index that starts at 1 before
the first return (so a first-day loss is a drawdown). VaR and CVaR are historical (empirical
quantile of the daily returns, empyrical's definition), not quantstats' normal approximation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.returns import underwater, value_at_risk
from quantlab_assets.backtest_engine.core import kpi_base, kpis

ANN = kpis.TRADING_DAYS_PER_YEAR
TOP_DRAWDOWNS = 5

# --- scalar and series figures ------------------------------------------------------------------


def drawdown_table(returns: pd.Series, top: int = TOP_DRAWDOWNS) -> pd.DataFrame:
    """The ``top`` deepest drawdown episodes: peak, trough, recovery date (NaT = not recovered),
    depth (<= 0) and length: the sessions spent below the peak (the recovery session is back at
    it), the definition of ``longest_drawdown_sessions`` (``kpis.drawdown_duration``), so the
    longest episode's length equals that figure.

    An episode starts after a session at the running peak and ends on the first session back at
    or above that peak. The peak of an episode that starts on the first session is the day
    before the data (the starting capital), shown as the first date.
    """
    dd = underwater(returns).to_numpy()
    dates = returns.index
    below = dd < 0
    cols = ["peak", "trough", "recovery", "depth", "length"]
    if not below.any():
        return pd.DataFrame(columns=cols)
    edges = np.diff(np.concatenate([[0], below.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends: first index back at peak
    rows = []
    for s, e in zip(starts, ends):
        trough = s + int(np.argmin(dd[s:e]))
        recovered = e < len(dd)
        rows.append(
            {
                "peak": dates[max(s - 1, 0)],
                "trough": dates[trough],
                "recovery": dates[e] if recovered else pd.NaT,
                "depth": float(dd[trough]),
                "length": int((e if recovered else len(dd)) - s),  # sessions under water
            }
        )
    table = pd.DataFrame(rows, columns=cols).sort_values("depth", kind="stable").head(top)
    return table.reset_index(drop=True)


def period_returns(returns: pd.Series, freq: str) -> pd.Series:
    """Compounded returns per calendar period (``"M"`` month, ``"Q"`` quarter, ``"Y"`` year),
    indexed by the period; partial periods at the ends are what they are."""
    idx = pd.DatetimeIndex(returns.index)
    key = idx.to_period(freq)
    return (1.0 + returns.fillna(0.0)).groupby(key).prod() - 1.0


def monthly_table(returns: pd.Series) -> pd.DataFrame:
    """Year x month (1..12) table of compounded monthly returns, plus the year's return."""
    monthly = period_returns(returns, "M")
    table = pd.DataFrame({"year": monthly.index.year, "month": monthly.index.month, "ret": monthly.to_numpy()})
    wide = table.pivot(index="year", columns="month", values="ret").reindex(columns=range(1, 13))
    wide["year_total"] = period_returns(returns, "Y").to_numpy()
    return wide


def yearly_vs_benchmark(returns: pd.Series, benchmark: pd.Series | None) -> pd.DataFrame:
    out = pd.DataFrame({"strategy": period_returns(returns, "Y")})
    if benchmark is not None:
        out["benchmark"] = period_returns(benchmark.reindex(returns.index), "Y")
        out["excess"] = out["strategy"] - out["benchmark"]
    out.index = out.index.year
    out.index.name = "year"
    return out


def rolling_figures(returns: pd.Series, benchmark: pd.Series | None, window: int) -> pd.DataFrame:
    """Rolling Sharpe (sqrt 252), annualised volatility and beta over ``window`` sessions (NaN
    until a full window): each the scalar figure (``kpis.sharpe_ratio``, ``kpis.annual_volatility``,
    ``beta``) of the window ending at that date."""
    out = pd.DataFrame(
        {
            f"sharpe_{window}": kpis.rolling_sharpe_ratio(returns, window),
            f"volatility_{window}": kpis.rolling_annual_volatility(returns, window),
        },
        index=returns.index,
    )
    if benchmark is not None:
        out[f"beta_{window}"] = rolling_beta(returns, benchmark.reindex(returns.index), window)
    return out


def rolling_beta(returns: pd.Series, benchmark: pd.Series, window: int) -> np.ndarray:
    """``beta`` of every ``window`` sessions ending at t (NaN before a full window), all windows at
    once: the OLS slope over the sessions of the window where both have a return."""
    r = returns.to_numpy(dtype=np.float64)
    b = benchmark.to_numpy(dtype=np.float64)
    out = np.full(len(r), np.nan)
    if len(r) < window:
        return out
    R, B = (np.lib.stride_tricks.sliding_window_view(x, window).T for x in (r, b))
    ok = ~(np.isnan(R) | np.isnan(B))
    k = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        bd = np.where(ok, B - np.where(ok, B, 0.0).sum(axis=0) / k, 0.0)
        var = (bd * bd).sum(axis=0) / k
        slope = (bd * np.where(ok, R, 0.0)).sum(axis=0) / k / var
    out[window - 1 :] = np.where((k >= 2) & (var > 0), slope, np.nan)
    return out


def conditional_value_at_risk(returns, cutoff: float = 0.05) -> float:
    """Expected shortfall: the mean of the returns at or below the historical VaR."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[~np.isnan(r)]
    if not len(r):
        return float("nan")
    return float(r[r <= np.percentile(r, 100 * cutoff)].mean())


def beta(returns: pd.Series, benchmark: pd.Series) -> float:
    """OLS slope of the returns on the benchmark over the sessions both have (empyrical's beta)."""
    r, b = _aligned(returns, benchmark)
    if len(r) < 2:
        return float("nan")
    bd = b - b.mean()
    var = np.mean(bd * bd)
    return float(np.mean(bd * r) / var) if var > 0 else float("nan")


def alpha(returns: pd.Series, benchmark: pd.Series) -> float:
    """Annualised Jensen's alpha (risk-free 0): (1 + mean(r - beta b)) ** 252 - 1 (empyrical)."""
    r, b = _aligned(returns, benchmark)
    if len(r) < 2:
        return float("nan")
    return float((1.0 + np.mean(r - beta(returns, benchmark) * b)) ** ANN - 1.0)


def capture(returns: pd.Series, benchmark: pd.Series, side: str) -> float:
    """Up (down) capture: the strategy's CAGR over the sessions where the benchmark rose (fell),
    divided by the benchmark's CAGR over them (empyrical's up_capture / down_capture)."""
    r, b = _aligned(returns, benchmark)
    keep = b > 0 if side == "up" else b < 0
    if not keep.any():
        return float("nan")
    return float(kpis.cagr(r[keep]) / kpis.cagr(b[keep]))


def _aligned(returns: pd.Series, benchmark: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    b = benchmark.reindex(returns.index).to_numpy(dtype=np.float64)
    r = returns.to_numpy(dtype=np.float64)
    ok = ~(np.isnan(r) | np.isnan(b))
    return r[ok], b[ok]


def _streak(flag: np.ndarray) -> int:
    runs = kpi_base.run_lengths(flag)
    return int(runs.max()) if runs.size else 0


def _trailing_return(returns: pd.Series, since: pd.Timestamp, annualise_years: float | None = None) -> float:
    part = returns[returns.index > since]
    if not len(part) or returns.index[0] > since:
        return float("nan")
    total = float((1.0 + part.fillna(0.0)).prod() - 1.0)
    return (1.0 + total) ** (1.0 / annualise_years) - 1.0 if annualise_years else total


def metrics(
    returns: pd.Series, benchmark: pd.Series | None = None, exposure: pd.Series | None = None
) -> dict[str, float]:
    """Every scalar figure of the tearsheet, in display order (quantstats' full-report metrics
    that this project keeps; docs/analytics.md lists the ones deliberately left out)."""
    r = returns.astype(np.float64)
    v = r.to_numpy()
    clean = v[~np.isnan(v)]
    last = r.index[-1]
    monthly, quarterly, yearly = (period_returns(r, f) for f in ("M", "Q", "Y"))
    wins, losses = clean[clean > 0], clean[clean < 0]
    dd = underwater(r)
    episodes = drawdown_table(r, top=len(r))
    total = float(kpis.total_return(v))
    mdd = float(kpis.max_drawdown(v))
    payoff = wins.mean() / abs(losses.mean()) if len(wins) and len(losses) else np.nan
    profit_factor = wins.sum() / abs(losses.sum()) if len(losses) else np.nan
    win_rate = len(wins) / len(clean) if len(clean) else np.nan
    tail = abs(np.percentile(clean, 95) / np.percentile(clean, 5)) if len(clean) else np.nan
    years = len(v) / ANN
    out: dict[str, float] = {
        "sessions": float(len(v)),
        "risk_adjusted_return": np.nan,  # filled below: CAGR / time in market
        "time_in_market": float((exposure.abs() > 0).mean()) if exposure is not None else float((clean != 0).mean()),
        "cumulative_return": total,
        "cagr": float(kpis.cagr(v)),
        "sharpe_ratio": float(kpis.sharpe_ratio(v)),
        "probabilistic_sharpe_ratio": kpis.probabilistic_sharpe_ratio(v),
        "sortino_ratio": float(kpis.sortino_ratio(v)),
        "sortino_ratio_over_sqrt2": float(kpis.sortino_ratio(v)) / math.sqrt(2.0),
        "omega_ratio": float(wins.sum() / -losses.sum()) if len(losses) else np.nan,
        "max_drawdown": mdd,
        "longest_drawdown_sessions": float(kpis.drawdown_duration(v)),
        "annual_volatility": float(kpis.annual_volatility(v)),
        "calmar_ratio": float(kpis.calmar_ratio(v)),
        "skew": float(pd.Series(clean).skew()),
        "kurtosis": float(pd.Series(clean).kurt()),  # excess, bias-corrected (pandas, Excel)
        "expected_daily_return": float((1.0 + total) ** (1.0 / len(v)) - 1.0) if len(v) else np.nan,
        "expected_monthly_return": float(np.prod(1.0 + monthly) ** (1.0 / len(monthly)) - 1.0),
        "expected_yearly_return": float(np.prod(1.0 + yearly) ** (1.0 / len(yearly)) - 1.0),
        "kelly_criterion": float(win_rate - (1.0 - win_rate) / payoff) if payoff and np.isfinite(payoff) else np.nan,
        "var_95": value_at_risk(v, 0.05),
        "cvar_95": conditional_value_at_risk(v, 0.05),
        "var_99": value_at_risk(v, 0.01),
        "cvar_99": conditional_value_at_risk(v, 0.01),
        "avg_return": float(clean[clean != 0].mean()) if (clean != 0).any() else np.nan,
        "avg_win": float(wins.mean()) if len(wins) else np.nan,
        "avg_loss": float(losses.mean()) if len(losses) else np.nan,
        "risk_return_ratio": kpis.sharpe_moments(v).sharpe,  # the per-period Sharpe ratio
        "max_consecutive_wins": float(_streak(v > 0)),
        "max_consecutive_losses": float(_streak(v < 0)),
        "gain_pain_ratio": float(clean.sum() / -losses.sum()) if len(losses) else np.nan,
        "gain_pain_ratio_monthly": float(monthly.sum() / -monthly[monthly < 0].sum())
        if (monthly < 0).any()
        else np.nan,
        "payoff_ratio": float(payoff),
        "profit_factor": float(profit_factor),
        "common_sense_ratio": float(profit_factor * tail),
        "cpc_index": float(profit_factor * win_rate * payoff),
        "tail_ratio": float(tail),
        "mtd": _trailing_return(
            r,
            (last - pd.offsets.MonthBegin(1)).normalize() - pd.Timedelta(days=1)
            if last.day != 1
            else last - pd.Timedelta(days=1),
        ),
        "return_3m": _trailing_return(r, last - pd.DateOffset(months=3)),
        "return_6m": _trailing_return(r, last - pd.DateOffset(months=6)),
        "ytd": _trailing_return(r, pd.Timestamp(year=last.year, month=1, day=1) - pd.Timedelta(days=1)),
        "return_1y": _trailing_return(r, last - pd.DateOffset(years=1)),
        "return_3y_annualised": _trailing_return(r, last - pd.DateOffset(years=3), 3.0),
        "return_5y_annualised": _trailing_return(r, last - pd.DateOffset(years=5), 5.0),
        "return_10y_annualised": _trailing_return(r, last - pd.DateOffset(years=10), 10.0),
        "all_time_annualised": float((1.0 + total) ** (1.0 / years) - 1.0) if years > 0 else np.nan,
        "best_day": float(clean.max()) if len(clean) else np.nan,
        "worst_day": float(clean.min()) if len(clean) else np.nan,
        "best_month": float(monthly.max()),
        "worst_month": float(monthly.min()),
        "best_year": float(yearly.max()),
        "worst_year": float(yearly.min()),
        "avg_drawdown": float(episodes["depth"].mean()) if len(episodes) else 0.0,
        "avg_drawdown_sessions": float(episodes["length"].mean()) if len(episodes) else 0.0,
        "recovery_factor": float(total / abs(mdd)) if mdd < 0 else np.nan,
        "ulcer_index": float(np.sqrt(np.mean(dd.to_numpy() ** 2))),
        "ulcer_performance_index": float(total / np.sqrt(np.mean(dd.to_numpy() ** 2))) if mdd < 0 else np.nan,
        "avg_up_month": float(monthly[monthly > 0].mean()) if (monthly > 0).any() else np.nan,
        "avg_down_month": float(monthly[monthly < 0].mean()) if (monthly < 0).any() else np.nan,
        "win_days": float(win_rate),
        "win_months": float((monthly > 0).mean()),
        "win_quarters": float((quarterly > 0).mean()),
        "win_years": float((yearly > 0).mean()),
    }
    exposed = out["time_in_market"]
    out["risk_adjusted_return"] = out["cagr"] / exposed if exposed > 0 else np.nan
    if benchmark is not None and benchmark.reindex(r.index).notna().sum() >= 2:
        rr, bb = _aligned(r, benchmark)
        b_ = beta(r, benchmark)
        corr = float(np.corrcoef(rr, bb)[0, 1]) if len(rr) > 1 else np.nan
        out.update(
            {
                "benchmark_cumulative_return": float(kpis.total_return(benchmark.reindex(r.index).to_numpy())),
                "alpha": alpha(r, benchmark),
                "beta": b_,
                "correlation": corr,
                "r_squared": corr * corr,
                "tracking_error": float(np.std(rr - bb, ddof=1) * np.sqrt(ANN)),
                "information_ratio": float(kpis.information_ratio(v, benchmark.reindex(r.index).to_numpy())),
                "up_capture": capture(r, benchmark, "up"),
                "down_capture": capture(r, benchmark, "down"),
                "treynor_ratio": float(kpis.cagr(v) / b_) if b_ else np.nan,
            }
        )
    return out


# --- book figures: exposure, turnover, costs, attribution ---------------------------------------


def book_over_time(equity: pd.DataFrame, positions: pd.DataFrame) -> pd.DataFrame:
    """Per date: gross and net exposure, number of names held, turnover, the day's costs as a
    share of the previous equity (cost drag) and its running sum."""
    eq = equity.set_index("date").sort_index()
    names = positions.groupby("date")["symbol"].count().reindex(eq.index).fillna(0)
    prev = eq["equity"].shift(1)
    prev.iloc[:1] = eq["equity"].iloc[:1] / (1.0 + eq["ret"].iloc[:1].fillna(0.0))
    drag = eq["costs"] / prev
    return pd.DataFrame(
        {
            "gross_exposure": eq["gross_exposure"],
            "net_exposure": eq["net_exposure"],
            "names": names.astype(np.int64),
            "turnover": eq["turnover"],
            "cost_drag": drag,
            "cumulative_cost_drag": drag.cumsum(),
        }
    )


def attribution(positions: pd.DataFrame, trades: pd.DataFrame, last_date=None) -> pd.DataFrame:
    """Net P&L by symbol since the strategy's start: value held at the last date, minus the
    signed notional traded (buys positive) and the costs paid. The symbols' P&L sums to the
    final equity minus the starting capital (cash earns nothing)."""
    last = positions["date"].max() if last_date is None else pd.Timestamp(last_date)
    held = positions[positions["date"] == last].groupby("symbol")["value"].sum()
    flows = trades.groupby("symbol")[["notional", "cost"]].sum()
    out = pd.DataFrame({"value": held}).join(flows, how="outer").fillna(0.0)
    out["pnl"] = out["value"] - out["notional"] - out["cost"]
    out["traded_notional"] = trades.assign(a=trades["notional"].abs()).groupby("symbol")["a"].sum()
    out = out.fillna({"traded_notional": 0.0})
    return out[["pnl", "value", "cost", "traded_notional"]].sort_values("pnl", ascending=False)
