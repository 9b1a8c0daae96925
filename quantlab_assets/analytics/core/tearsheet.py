"""A strategy's tearsheet from its stored backtest: the figures of pyfolio / quantstats, our own code.

Why not quantstats or pyfolio-reloaded: both pull in seaborn, scipy and (quantstats) yfinance,
print to a notebook or fetch a benchmark over the network, and their report is one opaque call
(docs/analytics.md has the measured install cost). Every figure here is a few lines
of numpy/pandas over the stored tables, tested against empyrical-reloaded (and quantstats where
their definitions agree); the same functions serve the asset, the bench and a notebook.

Conventions (the same as ``kpis``): ``returns`` are simple daily returns indexed by date, 252
sessions a year, sample standard deviations (ddof = 1), a wealth index that starts at 1 before
the first return (so a first-day loss is a drawdown). VaR and CVaR are historical (empirical
quantile of the daily returns, empyrical's definition), not quantstats' normal approximation.

The module assembles the sheet; the figures are in ``tearsheet_stats``, the markdown and HTML in
``tearsheet_render``, the PNGs in ``tearsheet_charts``. Every public name of those is importable
from here, where the assets, the bench and the tests import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core import tearsheet_charts
from quantlab_assets.analytics.core.returns import ROLLING_WINDOWS, contributors, underwater, value_at_risk
from quantlab_assets.analytics.core.tearsheet_render import format_metric, tearsheet_html, tearsheet_markdown
from quantlab_assets.analytics.core.tearsheet_stats import (
    ANN,
    TOP_DRAWDOWNS,
    alpha,
    attribution,
    beta,
    book_over_time,
    capture,
    conditional_value_at_risk,
    drawdown_table,
    metrics,
    monthly_table,
    period_returns,
    rolling_beta,
    rolling_figures,
    yearly_vs_benchmark,
)
from quantlab_assets.analytics.core.trades import (
    holding_weights,
    holdings_over_time,
    round_trip_stats,
    round_trips,
    top_holdings,
)
from quantlab_assets.backtest_engine.core import kpis
from quantlab_assets.backtest_engine.core.kpis import probabilistic_sharpe_ratio

__all__ = [
    "ANN",
    "EQUAL_WEIGHT",
    "POSITION_FIELDS",
    "TOP_DRAWDOWNS",
    "TRADE_FIELDS",
    "Tearsheet",
    "alpha",
    "attribution",
    "beta",
    "book_over_time",
    "build_tearsheet",
    "capture",
    "conditional_value_at_risk",
    "contributors",
    "drawdown_table",
    "format_metric",
    "holdings_over_time",
    "metrics",
    "monthly_table",
    "period_returns",
    "probabilistic_sharpe_ratio",
    "rolling_beta",
    "rolling_figures",
    "round_trip_stats",
    "round_trips",
    "tearsheet_html",
    "tearsheet_markdown",
    "top_holdings",
    "underwater",
    "value_at_risk",
    "yearly_vs_benchmark",
]

EQUAL_WEIGHT = "equal_weight"
# The columns of backtest_positions and backtest_trades the tearsheet reads (book, holdings,
# attribution, round trips).
POSITION_FIELDS = ("date", "symbol", "value")
TRADE_FIELDS = ("date", "symbol", "shares", "price", "notional", "cost")


# --- the whole tearsheet ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tearsheet:
    strategy: str
    benchmark_name: str
    returns: pd.Series
    benchmark: pd.Series | None
    metrics: dict[str, float]
    drawdowns: pd.DataFrame
    monthly: pd.DataFrame
    yearly: pd.DataFrame
    rolling: pd.DataFrame
    book: pd.DataFrame
    attribution: pd.DataFrame
    charts: dict[str, bytes] = field(default_factory=dict)
    # The benchmark's own figures (``metrics`` of its returns where it has one), shown beside the
    # strategy's; pyfolio's holdings and round trips (``trades`` module).
    benchmark_metrics: dict[str, float] = field(default_factory=dict)
    holdings: pd.DataFrame = field(default_factory=pd.DataFrame)
    top_holdings: pd.DataFrame = field(default_factory=pd.DataFrame)
    top_weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    round_trips: pd.DataFrame = field(default_factory=pd.DataFrame)
    round_trip_stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Since-start figures start at the first invested session (``kpis.first_invested``, as
    # ``backtest_kpis`` and the leaderboard): the flat warm-up before it is left out and counted.
    first_invested: pd.Timestamp | None = None
    warmup_sessions: int = 0


def build_tearsheet(
    strategy: str,
    equity: pd.DataFrame,
    positions: pd.DataFrame,
    trades: pd.DataFrame,
    benchmark: pd.Series | None,
    benchmark_name: str = EQUAL_WEIGHT,
    charts: bool = True,
) -> Tearsheet:
    """All figures of one strategy from its stored tables (``backtest_equity`` rows with ``date``,
    ``equity``, ``ret``, exposures, ``turnover``, ``costs``; ``backtest_positions``;
    ``backtest_trades``) and benchmark daily returns by date (None: no benchmark figures).

    The figures start at the strategy's first invested session (the first fill, as
    ``backtest_kpis``' since-start rows and the leaderboard): the flat warm-up before it (12-1
    momentum needs 253 sessions) would dilute every figure with zero returns. A strategy that
    never held a book, or held one on fewer than 2 sessions, keeps its whole range and says so."""
    if len(equity) < 2:
        raise ValueError(f"{strategy}: a tearsheet needs at least 2 sessions of backtest_equity, got {len(equity)}")
    eq, first, warmup = _from_first_invested(equity.sort_values("date"))
    returns = pd.Series(eq["ret"].to_numpy(np.float64), index=pd.DatetimeIndex(eq["date"]), name=strategy)
    bench = None
    if benchmark is not None:
        bench = benchmark.set_axis(pd.DatetimeIndex(benchmark.index)).reindex(returns.index).astype(np.float64)
        bench.name = benchmark_name
    book = book_over_time(eq, positions)
    rolling = pd.concat([rolling_figures(returns, bench, w) for w in ROLLING_WINDOWS], axis=1)
    sheet = Tearsheet(
        strategy=strategy,
        benchmark_name=benchmark_name,
        returns=returns,
        benchmark=bench,
        metrics=metrics(returns, bench, book["gross_exposure"]),
        drawdowns=drawdown_table(returns),
        monthly=monthly_table(returns),
        yearly=yearly_vs_benchmark(returns, bench),
        rolling=rolling,
        book=book,
        attribution=attribution(positions, trades, returns.index[-1]),
        benchmark_metrics=_benchmark_metrics(bench),
        **_holdings_and_trips(eq, positions, trades),
        first_invested=first,
        warmup_sessions=warmup,
    )
    if charts:
        sheet.charts.update(tearsheet_charts.render(sheet))
    return sheet


def _benchmark_metrics(bench: pd.Series | None) -> dict[str, float]:
    """The benchmark's figures over the sessions it has a return (it starts where the strategy
    can first be invested); none below 2 sessions."""
    own = bench.dropna() if bench is not None else None
    return metrics(own) if own is not None and len(own) >= 2 else {}


def _holdings_and_trips(eq: pd.DataFrame, positions: pd.DataFrame, trades: pd.DataFrame) -> dict:
    weights = holding_weights(positions, eq)
    top = top_holdings(positions, eq)
    out = {
        "holdings": holdings_over_time(positions, eq),
        "top_holdings": top,
        "top_weights": weights[list(top["symbol"])],
    }
    if {"date", "symbol", "shares", "price", "cost"} <= set(trades.columns):  # a caller's narrower trades: none
        trips = round_trips(trades, eq)
        out.update(round_trips=trips, round_trip_stats=round_trip_stats(trips))
    return out


def _from_first_invested(eq: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp | None, int]:
    """The rows from the first invested session, that session, and the warm-up rows left out."""
    first = kpis.first_invested(eq)
    if first is None:
        return eq, None, 0
    keep = pd.to_datetime(eq["date"]).to_numpy() >= first.to_datetime64()
    if keep.sum() < 2:
        return eq, first, 0
    return eq[keep], first, int((~keep).sum())
