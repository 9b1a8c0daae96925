"""Every strategy side by side: the stored KPIs (since start and trailing), yearly returns, the
correlation of daily returns and the supervisor's approval rate, as of one date."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.tearsheet import period_returns
from quantlab_assets.backtest_engine.core import kpis as kp
from quantlab_assets.backtest_engine.core.kpis import SINCE_START
from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.charts import render_png
from quantlab_assets.portfolio_supervisor.core.report import judged_a_book

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
    common: pd.DataFrame = field(default_factory=pd.DataFrame)  # every strategy over the common window
    common_from: pd.Timestamp | None = None  # the window's first session (the latest first invested one)


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
        own = equity[equity["strategy"] == name]
        since = _first_held(own)
        row: dict = {
            "strategy": name,
            "last_date": mine["date"].max() if len(mine) else pd.NaT,
            # the since-start window's length, as the figures beside it: from `since` on
            "sessions": 0 if pd.isna(since) else int((pd.to_datetime(own["date"]) >= since).sum()),
            "since": since,
        }
        for scope, prefix in ((SINCE_START, ""), (None, "t252_")):
            sel = last[last["scope"] == scope] if scope else last[last["scope"] != SINCE_START]
            for k in HEADLINE:
                row[prefix + k] = float(sel[k].iloc[0]) if len(sel) and k in sel else np.nan
        row.update(_approval(approvals[approvals["strategy"] == name], equity[equity["strategy"] == name]))
        rows.append(row)
    columns = [
        "strategy",
        "last_date",
        "since",
        "sessions",
        *HEADLINE,
        *(f"t252_{k}" for k in HEADLINE),
        "approval_rate",
        "approval_sessions",
        "flag",
    ]
    table = pd.DataFrame(rows, columns=columns)  # the columns even with no strategy yet (a holiday run)
    if len(table):
        table = table.sort_values("sharpe_ratio", ascending=False, na_position="last", kind="stable")
    returns = equity.pivot_table(index="date", columns="strategy", values="ret", aggfunc="first").sort_index()
    yearly = pd.DataFrame({s: period_returns(returns[s].dropna(), "Y") for s in returns.columns}).T
    yearly.columns = [str(p.year) for p in yearly.columns]
    correlation = returns.corr(min_periods=2)
    common, common_from = common_window(returns, table)
    return Leaderboard(cutoff, table.reset_index(drop=True), yearly, correlation, returns, common, common_from)


def _first_held(equity: pd.DataFrame):
    """The first session the strategy held a book (NaT: never; the first row without exposures)."""
    if not len(equity):
        return pd.NaT
    if "gross_exposure" not in equity.columns:
        return pd.Timestamp(pd.to_datetime(equity["date"]).min())
    held = pd.to_datetime(equity.loc[equity["gross_exposure"].to_numpy() > 0, "date"])
    return pd.Timestamp(held.min()) if len(held) else pd.NaT


COMMON = ("total_return", "annual_volatility", "sharpe_ratio", "max_drawdown")


def common_window(returns: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """Every strategy that held a book, over the sessions from the latest first invested session
    to the last date: strategies that start trading on different dates compared on the same days
    (the same KPI functions as the stored figures)."""
    starts = pd.to_datetime(table["since"]) if len(table) else pd.Series(dtype="datetime64[ns]")
    if not starts.notna().any():
        return pd.DataFrame(columns=["strategy", "sessions", *COMMON]), None
    first = pd.Timestamp(starts.max())
    window = returns[returns.index >= first]
    rows = []
    for name in table.loc[starts.notna(), "strategy"]:
        r = window[name].to_numpy(dtype=np.float64)
        rows.append(
            {
                "strategy": name,
                "sessions": int(np.isfinite(r).sum()),
                "total_return": kp.total_return(r),
                "annual_volatility": kp.annual_volatility(r),
                "sharpe_ratio": kp.sharpe_ratio(r),
                "max_drawdown": kp.max_drawdown(r),
            }
        )
    frame = pd.DataFrame(rows, columns=["strategy", "sessions", *COMMON])
    return frame.sort_values("sharpe_ratio", ascending=False, kind="stable").reset_index(drop=True), first


# Below this share of approved invested sessions the supervisor is said to reject the strategy.
MOSTLY_REJECTED = 0.5


def _approval(decided: pd.DataFrame, equity: pd.DataFrame) -> dict:
    """The approval rate over the sessions with a book at stake: the strategy held one, or the
    judged book itself was not flat (``approvals.gross`` > 0: a rejected first rebalance counts,
    though the book was still in cash). Approving a flat book while flat is no approved trading
    day. The flag is what a reader must not miss: it never held anything, or the supervisor
    rejects it. Without ``gross_exposure`` in ``equity`` every judged session counts."""
    if "gross_exposure" in equity.columns and len(equity):
        held = pd.to_datetime(equity.loc[equity["gross_exposure"].to_numpy() > 0, "date"])
        if not len(held):
            return {"approval_rate": np.nan, "approval_sessions": 0, "flag": "EMPTY BOOK: held nothing"}
        at_stake = pd.to_datetime(decided["date"]).isin(held).to_numpy()
        if "gross" in decided.columns:
            at_stake |= judged_a_book(decided)
        decided = decided[at_stake]
    if not len(decided):
        return {"approval_rate": np.nan, "approval_sessions": 0, "flag": ""}
    rate = float((decided["status"] == "approved").mean())
    flag = ""
    if rate == 0.0:
        flag = "REJECTED: every session"
    elif rate < MOSTLY_REJECTED:
        flag = f"REJECTED: {1 - rate:.0%} of sessions"
    return {"approval_rate": rate, "approval_sessions": int(len(decided)), "flag": flag}


def equity_curves_png(board: Leaderboard) -> bytes:
    """All strategies' growth of 1 on one chart (each from its own first session)."""
    return render_png(_equity_curves, board, dpi=80)


def _equity_curves(plt, board: Leaderboard):
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
    return fig


def _percent(frame: pd.DataFrame, pct: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col in pct:
            out[col] = out[col].map(lambda x: "n/a" if pd.isna(x) else f"{x:.2%}")
        elif out[col].dtype.kind == "f":
            out[col] = out[col].map(lambda x: "n/a" if pd.isna(x) else f"{x:.2f}")
    return out


def leaderboard_markdown(board: Leaderboard, chart: str | None) -> str:
    pct = ["total_return", "cagr", "annual_volatility", "max_drawdown", "turnover", "approval_rate"]
    shown = board.table.copy()
    for col in shown.columns:
        base = col.removeprefix("t252_")
        if base in pct:
            shown[col] = shown[col].map(lambda x: "n/a" if pd.isna(x) else f"{x:.2%}")
        elif shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda x: "n/a" if pd.isna(x) else f"{x:.2f}")
    since = shown[
        ["strategy", "sharpe_ratio", "approval_rate", "flag", "since", "last_date", "sessions"]
        + [k for k in HEADLINE if k != "sharpe_ratio"]
        + ["approval_sessions"]
    ]
    trailing = shown[["strategy", *[f"t252_{k}" for k in HEADLINE]]]
    yearly = board.yearly.apply(lambda c: c.map(lambda x: "" if pd.isna(x) else f"{x:.2%}")).reset_index(
        names="strategy"
    )
    corr = board.correlation.round(3).reset_index(names="strategy")
    lines = [
        f"# Strategy leaderboard as of {board.as_of.date()}",
        "",
        "Ranked by since-start Sharpe. KPIs are the stored `backtest_kpis` of each strategy's last date, "
        "counted from its first invested session (`since`); "
        "`sessions` counts from `since`; approval rate = share of the sessions with a book at stake "
        "(held, or judged while still flat) that the supervisor approved (after overrides; approving "
        "a flat book while flat is no approved trading day); `flag` marks a strategy the "
        f"supervisor rejects (under {MOSTLY_REJECTED:.0%} approved) or one that never held anything.",
        "",
    ]
    if chart:
        lines += [f"![equity curves]({chart})", ""]
    lines += [
        "## Since start",
        "",
        markdown_table(since, 100),
        "",
        f"## Common window: from {board.common_from.date() if board.common_from is not None else 'n/a'}",
        "",
        "Every strategy that held a book, over the same sessions: from the latest first invested "
        "session (`since`) to the last date.",
        "",
        markdown_table(_percent(board.common, ["total_return", "annual_volatility", "max_drawdown"]), 100),
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


def leaderboard_text(board: Leaderboard) -> str:
    """The ranking for a terminal: strategy, Sharpe, return, drawdown, approval rate and flag, the
    session the figures count from; the demo's last words."""

    def pct(x) -> str:
        return "n/a" if pd.isna(x) else f"{x:.2%}"

    head = f"{'strategy':<24}{'Sharpe':>8}{'return':>10}{'max DD':>10}{'approved':>10}  {'since':<11} flag"
    lines = [f"Strategy leaderboard as of {board.as_of.date()} (since each strategy's first invested session)", head]
    for r in board.table.to_dict("records"):
        sharpe = "n/a" if pd.isna(r["sharpe_ratio"]) else f"{r['sharpe_ratio']:.2f}"
        since = "never" if pd.isna(r["since"]) else str(pd.Timestamp(r["since"]).date())
        lines.append(
            f"{r['strategy']:<24}{sharpe:>8}{pct(r['total_return']):>10}{pct(r['max_drawdown']):>10}"
            f"{pct(r['approval_rate']):>10}  {since:<11} {r['flag']}"
        )
    if len(board.table) == 0:
        lines.append("(no strategy has a backtest yet)")
    return "\n".join(lines)
