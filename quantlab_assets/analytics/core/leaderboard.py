"""Every strategy side by side: the stored KPIs (since start and trailing), yearly returns, the
correlation of daily returns and the supervisor's approval rate, as of one date."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.tearsheet import period_returns
from quantlab_assets.backtest_engine.core.kpis import SINCE_START
from quantlab_assets.common.artifacts import markdown_table

HEADLINE = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
    "turnover",
    "information_ratio",
)


@dataclass(frozen=True)
class Leaderboard:
    as_of: pd.Timestamp
    table: pd.DataFrame  # one row per strategy, ranked by since-start Sharpe
    yearly: pd.DataFrame  # strategy x year, compounded returns
    correlation: pd.DataFrame  # strategy x strategy, Pearson of daily returns on common sessions
    returns: pd.DataFrame  # date x strategy daily returns (the chart's input)


def leaderboard(kpis: pd.DataFrame, equity: pd.DataFrame, approvals: pd.DataFrame, as_of) -> Leaderboard:
    """``kpis``: backtest_kpis rows (date, strategy, scope, KPI columns); ``equity``:
    backtest_equity rows (date, strategy, ret); ``approvals``: (date, strategy, status). Only rows
    dated <= ``as_of`` count; a strategy's KPIs are those of its last date."""
    cutoff = pd.Timestamp(as_of)
    kpis = kpis[pd.to_datetime(kpis["date"]) <= cutoff]
    equity = equity[pd.to_datetime(equity["date"]) <= cutoff]
    approvals = approvals[pd.to_datetime(approvals["date"]) <= cutoff]
    strategies = sorted(set(equity["strategy"]) | set(kpis["strategy"]))
    rows = []
    for name in strategies:
        mine = kpis[kpis["strategy"] == name]
        last = mine[mine["date"] == mine["date"].max()]
        row: dict = {
            "strategy": name,
            "last_date": mine["date"].max() if len(mine) else pd.NaT,
            "sessions": int((equity["strategy"] == name).sum()),
        }
        for scope, prefix in ((SINCE_START, ""), (None, "t252_")):
            sel = last[last["scope"] == scope] if scope else last[last["scope"] != SINCE_START]
            for k in HEADLINE:
                row[prefix + k] = float(sel[k].iloc[0]) if len(sel) and k in sel else np.nan
        decided = approvals[approvals["strategy"] == name]
        row["approval_rate"] = float((decided["status"] == "approved").mean()) if len(decided) else np.nan
        row["approval_sessions"] = int(len(decided))
        rows.append(row)
    columns = [
        "strategy",
        "last_date",
        "sessions",
        *HEADLINE,
        *(f"t252_{k}" for k in HEADLINE),
        "approval_rate",
        "approval_sessions",
    ]
    table = pd.DataFrame(rows, columns=columns)  # the columns even with no strategy yet (a holiday run)
    if len(table):
        table = table.sort_values("sharpe_ratio", ascending=False, na_position="last", kind="stable")
    returns = equity.pivot_table(index="date", columns="strategy", values="ret", aggfunc="first").sort_index()
    yearly = pd.DataFrame({s: period_returns(returns[s].dropna(), "Y") for s in returns.columns}).T
    yearly.columns = [str(p.year) for p in yearly.columns]
    correlation = returns.corr(min_periods=2)
    return Leaderboard(cutoff, table.reset_index(drop=True), yearly, correlation, returns)


def equity_curves_png(board: Leaderboard) -> bytes:
    """All strategies' growth of 1 on one chart (each from its own first session)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name in board.returns.columns:
        r = board.returns[name].dropna()
        ax.plot(r.index, (1.0 + r).cumprod(), lw=1.2, label=name)
    ax.set_ylabel("growth of 1 (net of costs)")
    ax.set_title(f"strategies as of {board.as_of.date()}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def leaderboard_markdown(board: Leaderboard, chart: str | None) -> str:
    pct = ["total_return", "cagr", "annual_volatility", "max_drawdown", "turnover", "approval_rate"]
    shown = board.table.copy()
    for col in shown.columns:
        base = col.removeprefix("t252_")
        if base in pct:
            shown[col] = shown[col].map(lambda x: "n/a" if pd.isna(x) else f"{x:.2%}")
        elif shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda x: "n/a" if pd.isna(x) else f"{x:.2f}")
    since = shown[["strategy", "last_date", "sessions", *HEADLINE, "approval_rate", "approval_sessions"]]
    trailing = shown[["strategy", *[f"t252_{k}" for k in HEADLINE]]]
    yearly = board.yearly.apply(lambda c: c.map(lambda x: "" if pd.isna(x) else f"{x:.2%}")).reset_index(
        names="strategy"
    )
    corr = board.correlation.round(3).reset_index(names="strategy")
    lines = [
        f"# Strategy leaderboard as of {board.as_of.date()}",
        "",
        "Ranked by since-start Sharpe. KPIs are the stored `backtest_kpis` of each strategy's last date; "
        "approval rate = share of sessions the supervisor approved (after overrides).",
        "",
    ]
    if chart:
        lines += [f"![equity curves]({chart})", ""]
    lines += [
        "## Since start",
        "",
        markdown_table(since, 100),
        "",
        "## Trailing 252 sessions",
        "",
        markdown_table(trailing, 100),
        "",
        "## Yearly returns",
        "",
        markdown_table(yearly, 100),
        "",
        "## Correlation of daily returns",
        "",
        markdown_table(corr, 100),
        "",
    ]
    return "\n".join(lines)
