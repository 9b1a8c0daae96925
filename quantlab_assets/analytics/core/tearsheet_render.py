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


def _metric_rows(sheet) -> pd.DataFrame:
    return pd.DataFrame(
        {"metric": list(sheet.metrics), "value": [format_metric(k, v) for k, v in sheet.metrics.items()]}
    )


def _pct_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda col: col.map(lambda x: "" if pd.isna(x) else f"{x:.2%}"))


def _drawdown_rows(sheet) -> pd.DataFrame:
    d = sheet.drawdowns.copy()
    d["recovery"] = d["recovery"].map(lambda x: "not recovered" if pd.isna(x) else x.strftime("%Y-%m-%d"))
    d["depth"] = d["depth"].map(lambda x: f"{x:.2%}")
    return d


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
    ]
    for name, ref in (charts or {}).items():
        lines += [f"![{name}]({ref})", ""]
    lines += [
        "### Key figures",
        "",
        markdown_table(_metric_rows(sheet), max_rows=200),
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
        f"{html.escape(sheet.benchmark_name)}; net of costs.</p>",
        img("returns"),
        "<h2>Key figures</h2>",
        _html_table(_metric_rows(sheet)),
        f"<h2>Worst {TOP_DRAWDOWNS} drawdowns</h2>",
        _html_table(_drawdown_rows(sheet)),
        "<h2>Monthly returns</h2>",
        heat,
        img("calendar"),
        "<h2>Rolling Sharpe, volatility and beta</h2>",
        img("rolling"),
        "<h2>Daily returns</h2>",
        img("distribution"),
        "<h2>Book: exposure, names, turnover, costs</h2>",
        img("book"),
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
        "img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(sheet.strategy)} tearsheet"
        f"</title><style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )
