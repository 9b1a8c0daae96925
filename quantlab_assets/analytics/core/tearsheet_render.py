"""The tearsheet as markdown (the UI, reports/tearsheets.md) and as one self-contained HTML page
(charts inline as base64 PNG, no script, no network). ``sheet`` is a ``tearsheet.Tearsheet``."""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.returns import contributors
from quantlab_assets.analytics.core.tearsheet_stats import TOP_DRAWDOWNS
from quantlab_assets.common.artifacts import markdown_table

_PCT = {
    "cumulative_return",
    "cagr",
    "max_drawdown",
    "annual_volatility",
    "expected_daily_return",
    "expected_monthly_return",
    "expected_yearly_return",
    "var_95",
    "cvar_95",
    "var_99",
    "cvar_99",
    "mtd",
    "return_3m",
    "return_6m",
    "ytd",
    "return_1y",
    "return_3y_annualised",
    "return_5y_annualised",
    "return_10y_annualised",
    "all_time_annualised",
    "best_day",
    "worst_day",
    "best_month",
    "worst_month",
    "best_year",
    "worst_year",
    "avg_drawdown",
    "avg_up_month",
    "avg_down_month",
    "win_days",
    "win_months",
    "win_quarters",
    "win_years",
    "time_in_market",
    "avg_return",
    "avg_win",
    "avg_loss",
    "risk_adjusted_return",
    "benchmark_cumulative_return",
    "alpha",
    "tracking_error",
    "ulcer_index",
    "probabilistic_sharpe_ratio",
    "kelly_criterion",
}


def format_metric(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if name in _PCT:
        return f"{value:.2%}"
    if name in (
        "sessions",
        "longest_drawdown_sessions",
        "max_consecutive_wins",
        "max_consecutive_losses",
        "avg_drawdown_sessions",
    ):
        return f"{value:,.0f}"
    return f"{value:.3f}"


# The key figures in quantstats' groups, each figure in exactly one (a test holds every name of
# ``metrics`` to that). Relative figures compare the strategy with the benchmark: one column.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "returns": (
        "cumulative_return",
        "cagr",
        "all_time_annualised",
        "expected_daily_return",
        "expected_monthly_return",
        "expected_yearly_return",
        "mtd",
        "return_3m",
        "return_6m",
        "ytd",
        "return_1y",
        "return_3y_annualised",
        "return_5y_annualised",
        "return_10y_annualised",
        "best_day",
        "worst_day",
        "best_month",
        "worst_month",
        "best_year",
        "worst_year",
        "avg_up_month",
        "avg_down_month",
        "win_days",
        "win_months",
        "win_quarters",
        "win_years",
    ),
    "risk": (
        "annual_volatility",
        "max_drawdown",
        "longest_drawdown_sessions",
        "avg_drawdown",
        "avg_drawdown_sessions",
        "var_95",
        "cvar_95",
        "var_99",
        "cvar_99",
        "skew",
        "kurtosis",
        "tail_ratio",
        "ulcer_index",
    ),
    "risk-adjusted": (
        "sharpe_ratio",
        "probabilistic_sharpe_ratio",
        "sortino_ratio",
        "sortino_ratio_over_sqrt2",
        "calmar_ratio",
        "omega_ratio",
        "risk_return_ratio",
        "risk_adjusted_return",
        "recovery_factor",
        "ulcer_performance_index",
        "gain_pain_ratio",
        "gain_pain_ratio_monthly",
        "common_sense_ratio",
    ),
    "relative": (
        "benchmark_cumulative_return",
        "alpha",
        "beta",
        "correlation",
        "r_squared",
        "tracking_error",
        "information_ratio",
        "up_capture",
        "down_capture",
        "treynor_ratio",
    ),
    "trading": (
        "sessions",
        "time_in_market",
        "avg_return",
        "avg_win",
        "avg_loss",
        "payoff_ratio",
        "profit_factor",
        "cpc_index",
        "kelly_criterion",
        "max_consecutive_wins",
        "max_consecutive_losses",
    ),
}


def key_figures(sheet) -> pd.DataFrame:
    """group, metric, strategy, benchmark (formatted): every figure of ``sheet.metrics`` once, in
    ``METRIC_GROUPS`` order; the benchmark's own figure beside it where one exists."""
    rows = []
    bench = sheet.benchmark_metrics
    for group, names in METRIC_GROUPS.items():
        for name in names:
            if name not in sheet.metrics:
                continue
            other = "" if group == "relative" or name not in bench else format_metric(name, bench[name])
            rows.append((group, name, format_metric(name, sheet.metrics[name]), other))
    frame = pd.DataFrame(rows, columns=["group", "metric", sheet.strategy, sheet.benchmark_name])
    return frame if bench else frame.drop(columns=sheet.benchmark_name)


def _metric_rows(sheet) -> pd.DataFrame:
    return key_figures(sheet)


_TRIP_COUNT = {"round_trips", "winning", "losing", "even"}
_TRIP_PCT = {"win_rate", "avg_return", "median_return", "avg_trade_return", "median_trade_return"}


def _trip_cell(name: str, value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if name in _TRIP_COUNT:
        return f"{value:,.0f}"
    if name in _TRIP_PCT:
        return f"{value:.2%}"
    if name.endswith(("_days", "_sessions")) or name in ("profit_factor", "win_loss_ratio"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"  # currency


def open_lots_line(sheet) -> str:
    """Round trips count closed positions only: the names still held at the end are said, so a
    book that keeps its losers open does not read as a high win rate without a word."""
    held = sheet.holdings
    if held.empty or not int(held["names"].iloc[-1]):
        return "Closed round trips only; nothing was held at the end."
    return (
        f"Closed round trips only: the {int(held['names'].iloc[-1])} name(s) still held on "
        f"{pd.Timestamp(held.index[-1]).date()} are not counted (pyfolio closes them at the last price)."
    )


def round_trip_rows(sheet) -> pd.DataFrame:
    """The round-trip statistics (all, long, short), formatted; empty without round trips."""
    stats = sheet.round_trip_stats
    if stats.empty or not stats.loc["round_trips", "all"]:
        return pd.DataFrame()
    out = stats.apply(lambda col: [_trip_cell(name, v) for name, v in col.items()])
    return out.rename_axis("statistic").reset_index()


def holdings_rows(sheet) -> pd.DataFrame:
    top = sheet.top_holdings
    if top.empty:
        return top
    return top.assign(
        max_weight=top["max_weight"].map(lambda x: f"{x:.2%}"),
        avg_weight_held=top["avg_weight_held"].map(lambda x: f"{x:.2%}"),
    )


def _book_line(sheet) -> str:
    h = sheet.holdings
    if h.empty:
        return ""
    held = h[h["names"] > 0]
    if held.empty:
        return "The book held nothing over the range."
    return (
        f"Names held: {held['names'].mean():.1f} on average ({held['names'].min()}–{held['names'].max()}) "
        f"on {len(held)} of {len(h)} sessions; largest single weight {h['max_abs_weight'].max():.2%}."
    )


def _pct_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda col: col.map(lambda x: "" if pd.isna(x) else f"{x:.2%}"))


def _drawdown_rows(sheet) -> pd.DataFrame:
    d = sheet.drawdowns.copy()
    d["recovery"] = d["recovery"].map(lambda x: "not recovered" if pd.isna(x) else x.strftime("%Y-%m-%d"))
    d["depth"] = d["depth"].map(lambda x: f"{x:.2%}")
    return d


def range_note(sheet) -> str:
    """Where the figures start and why: the first invested session and the warm-up left out, or a
    warning that the book was never (or barely) held."""
    first, warmup = getattr(sheet, "first_invested", None), getattr(sheet, "warmup_sessions", 0)
    if first is None:
        return "Never held a book over this range: every figure below is of a flat book (no fill)."
    if first > sheet.returns.index[0]:
        return f"Invested from {first.date()} only: fewer than 2 invested sessions, figures cover the whole range."
    if warmup:
        return (
            f"Figures from the first invested session, {first.date()}; the {warmup} flat warm-up session(s) "
            "before it are left out (as in backtest_kpis and the leaderboard)."
        )
    return f"Figures from the first invested session, {first.date()} (no warm-up)."


def tearsheet_markdown(sheet, charts: dict[str, str] | None = None) -> str:
    """The markdown the UI shows; ``charts`` maps a chart name to an image reference (a file
    name or a data URI) to embed."""
    r = sheet.returns
    top, bottom = contributors(sheet.attribution)
    lines = [
        f"## {sheet.strategy}: {r.index[0].date()} … {r.index[-1].date()}",
        "",
        f"Benchmark: {sheet.benchmark_name}. Net of costs; signals at the close fill at the next open.",
        "",
        range_note(sheet),
        "",
    ]
    for name, ref in (charts or {}).items():
        lines += [f"![{name}]({ref})", ""]
    lines += [
        "### Key figures",
        "",
        markdown_table(_metric_rows(sheet), max_rows=200),
        "",
        "### Holdings",
        "",
        _book_line(sheet),
        "",
        markdown_table(holdings_rows(sheet)) if not sheet.top_holdings.empty else "",
        "",
        "### Round trips (FIFO; P&L gross of costs as pyfolio, net_pnl after them)",
        "",
        open_lots_line(sheet),
        "",
        markdown_table(round_trip_rows(sheet), max_rows=60) if not round_trip_rows(sheet).empty else "_none closed_",
        "",
        f"### Worst {TOP_DRAWDOWNS} drawdowns",
        "",
        markdown_table(_drawdown_rows(sheet)),
        "",
        "### Yearly returns",
        "",
        markdown_table(_pct_frame(sheet.yearly).reset_index(), max_rows=100),
        "",
        "### Top contributors (net P&L by name)",
        "",
        markdown_table(top.round(2)),
        "",
        "### Top detractors",
        "",
        markdown_table(bottom.round(2)),
        "",
    ]
    return "\n".join(lines)


def _heat_cell(x) -> str:
    if pd.isna(x):
        return "<td></td>"
    strength = min(abs(x) / 0.08, 1.0)
    colour = f"rgba(39,174,96,{strength:.2f})" if x >= 0 else f"rgba(192,57,43,{strength:.2f})"
    return f'<td style="background:{colour}">{x:.2%}</td>'


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(v) -> str:
    if hasattr(v, "strftime"):
        return "" if pd.isna(v) else v.strftime("%Y-%m-%d")
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _grouped_html(sheet) -> str:
    """One table per group of key figures (strategy and benchmark side by side), in a row."""
    figures = key_figures(sheet)
    parts = []
    for group in METRIC_GROUPS:
        rows = figures[figures["group"] == group].drop(columns="group")
        if len(rows):
            parts.append(f"<div><h3>{html.escape(group)}</h3>{_html_table(rows)}</div>")
    return f"<div class='groups'>{''.join(parts)}</div>"


def tearsheet_html(sheet) -> str:
    """A self-contained page: the charts inline as base64 PNG, no script, no network."""

    def img(name):
        data = sheet.charts.get(name)
        return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">' if data else ""

    monthly = sheet.monthly
    heat = "<table><tr><th>year</th>" + "".join(f"<th>{m}</th>" for m in range(1, 13)) + "<th>total</th></tr>"
    for year, row in monthly.iterrows():
        heat += f"<tr><th>{year}</th>" + "".join(_heat_cell(x) for x in row.to_numpy()) + "</tr>"
    heat += "</table>"
    r = sheet.returns
    top, bottom = contributors(sheet.attribution)
    sections = [
        f"<h1>{html.escape(sheet.strategy)}</h1><p>{r.index[0].date()} … {r.index[-1].date()}; benchmark: "
        f"{html.escape(sheet.benchmark_name)}; net of costs.</p><p>{html.escape(range_note(sheet))}</p>",
        img("returns"),
        "<h2>Key figures</h2>",
        _grouped_html(sheet),
        f"<h2>Worst {TOP_DRAWDOWNS} drawdowns</h2>",
        _html_table(_drawdown_rows(sheet)),
        "<h2>Monthly returns</h2>",
        heat,
        img("calendar"),
        "<h2>Rolling Sharpe, volatility and beta</h2>",
        img("rolling"),
        "<h2>Daily returns</h2>",
        img("distribution"),
        "<h2>Book: exposure, turnover, costs</h2>",
        img("book"),
        "<h2>Holdings</h2>",
        f"<p>{html.escape(_book_line(sheet))}</p>",
        img("holdings"),
        _html_table(holdings_rows(sheet)) if not sheet.top_holdings.empty else "",
        "<h2>Round trips</h2>",
        "<p>Shares matched first in, first out per name; a closing trade is one round trip. P&amp;L gross "
        "of costs (pyfolio's definition), total_net_pnl after them; return = P&amp;L over the book's equity "
        "at the previous close, trade return = P&amp;L over the capital of the trip.</p>",
        f"<p>{html.escape(open_lots_line(sheet))}</p>",
        _html_table(round_trip_rows(sheet)) if not round_trip_rows(sheet).empty else "<p>none closed</p>",
        "<h2>P&amp;L by name</h2>",
        img("attribution"),
        "<h3>Top contributors</h3>",
        _html_table(top),
        "<h3>Top detractors</h3>",
        _html_table(bottom),
    ]
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}"
        "img{width:100%;height:auto}.groups{display:flex;flex-wrap:wrap;gap:0 24px}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(sheet.strategy)} tearsheet"
        f"</title><style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )
