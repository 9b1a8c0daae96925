"""``backtest_summary.md`` and its equity / drawdown chart (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.charts import render_png


def benchmark_label(benchmark: str) -> str:
    """How the summary names the spec's ``benchmark:``: the equal-weight universe or the symbol."""
    return "equal-weight universe" if benchmark == "equal_weight" else benchmark


def equity_drawdown_png(
    equity: pd.DataFrame, benchmark_ret: pd.Series | None, title: str, benchmark: str = "equal_weight"
) -> bytes:
    """Two panels: equity vs the spec's benchmark (both rebased to 1), and drawdown."""
    return render_png(_equity_drawdown, equity, benchmark_ret, title, benchmark, dpi=90)


def _equity_drawdown(plt, equity: pd.DataFrame, benchmark_ret: pd.Series | None, title: str, benchmark: str):
    dates = pd.to_datetime(equity["date"])
    wealth = equity["equity"].to_numpy() / equity["equity"].iloc[0]
    drawdown = wealth / np.maximum.accumulate(wealth) - 1.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    top.plot(dates, wealth, label="strategy (net of costs)", color="#1f5fa8", linewidth=1.4)
    if benchmark_ret is not None and len(benchmark_ret):
        bench = 1.0 + benchmark_ret.reindex(dates).fillna(0.0).to_numpy()
        bench[0] = 1.0
        top.plot(dates, np.cumprod(bench), label=benchmark_label(benchmark), color="#999999", linewidth=1.0)
    top.set_title(title)
    top.set_ylabel("growth of 1")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.fill_between(dates, drawdown, 0.0, color="#c0392b", alpha=0.5)
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def kpi_markdown(kpis_last: pd.DataFrame) -> str:
    """The KPI rows of one date as a table, one column per scope, in percent or 2 decimals."""
    fmt = {
        "total_return": "{:.2%}",
        "cagr": "{:.2%}",
        "annual_volatility": "{:.2%}",
        "sharpe_ratio": "{:.2f}",
        "sortino_ratio": "{:.2f}",
        "max_drawdown": "{:.2%}",
        "drawdown_duration": "{:.0f}",
        "calmar_ratio": "{:.2f}",
        "hit_rate": "{:.1%}",
        "turnover": "{:.2%}",
        "excess_return": "{:.2%}",
        "information_ratio": "{:.2f}",
        "pnl_gross": "{:,.0f}",
        "pnl_net": "{:,.0f}",
        "costs_paid": "{:,.0f}",
    }
    rows = []
    for name, f in fmt.items():
        cells = []
        for scope in kpis_last["scope"]:
            v = kpis_last.loc[kpis_last["scope"] == scope, name].iloc[0]
            cells.append("n/a" if pd.isna(v) else f.format(v))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    header = "| KPI | " + " | ".join(kpis_last["scope"]) + " |"
    return "\n".join([header, "|---|" + "---|" * len(kpis_last), *rows])


def backtest_summary_markdown(
    strategy: str,
    start,
    end,
    kpis_last: pd.DataFrame,
    trades: pd.DataFrame,
    skipped: pd.DataFrame,
    fee_bps: float,
    slippage_bps: float,
    chart: str,
    benchmark: str = "equal_weight",
) -> str:
    """``kpis_last``: the KPI rows (both scopes) of the last date."""
    lines = [
        f"## {strategy}: {pd.Timestamp(start).date()} … {pd.Timestamp(end).date()}",
        "",
        f"Targets decided at the close fill at the next session's open; costs {fee_bps} bps fee + "
        f"{slippage_bps} bps slippage on traded notional. Benchmark: {benchmark_label(benchmark)}.",
        "",
        f"![equity and drawdown]({chart})",
        "",
        kpi_markdown(kpis_last),
        "",
        f"Trades in this run: {len(trades)}; orders skipped (no open price): {len(skipped)}.",
    ]
    if len(skipped):
        lines += ["", markdown_table(skipped, 10)]
    return "\n".join(lines) + "\n"


def headline_text(kpis_last: pd.DataFrame, first_invested: pd.Timestamp | None) -> str:
    """One line a reader sees on the backtest's page: the since-start Sharpe, return, drawdown and
    information ratio of the last date, and the session they count from."""
    since = kpis_last[kpis_last["scope"] == "since_start"]
    if first_invested is None or not len(since):
        return "EMPTY BOOK: the strategy held nothing yet; no since-start figure"
    row = since.iloc[0]

    def f(name: str, fmt: str) -> str:
        v = row[name]
        return "n/a" if pd.isna(v) else fmt.format(v)

    return (
        f"Sharpe {f('sharpe_ratio', '{:.2f}')} · total return {f('total_return', '{:.2%}')} · "
        f"max drawdown {f('max_drawdown', '{:.2%}')} · vs benchmark {f('excess_return', '{:+.2%}')} "
        f"(IR {f('information_ratio', '{:.2f}')}) · since {first_invested.date()} (first invested session), "
        f"as of {pd.Timestamp(row['date']).date()}"
    )
