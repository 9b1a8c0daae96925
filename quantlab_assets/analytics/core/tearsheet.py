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
    probabilistic_sharpe_ratio,
    rolling_figures,
    yearly_vs_benchmark,
)

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
    "metrics",
    "monthly_table",
    "period_returns",
    "probabilistic_sharpe_ratio",
    "rolling_figures",
    "tearsheet_html",
    "tearsheet_markdown",
    "underwater",
    "value_at_risk",
    "yearly_vs_benchmark",
]

EQUAL_WEIGHT = "equal_weight"
# The columns of backtest_positions and backtest_trades the tearsheet reads (book and attribution).
POSITION_FIELDS = ("date", "symbol", "value")
TRADE_FIELDS = ("symbol", "notional", "cost")


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
    ``backtest_trades``) and benchmark daily returns by date (None: no benchmark figures)."""
    if len(equity) < 2:
        raise ValueError(f"{strategy}: a tearsheet needs at least 2 sessions of backtest_equity, got {len(equity)}")
    eq = equity.sort_values("date")
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
    )
    if charts:
        sheet.charts.update(tearsheet_charts.render(sheet))
    return sheet
