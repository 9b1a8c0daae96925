"""The tearsheet's PNG charts, drawn through ``common.charts`` (Agg backend, full page width,
constrained layout, fractions on percent axes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.returns import (
    ROLLING_WINDOWS,
    contributors,
    underwater,
    value_at_risk,
    wealth_index,
)
from quantlab_assets.common.charts import (
    figure,
    integer_axis,
    percent_axis,
    plain_log_axis,
    png_bytes,
    pyplot,
    render_png,
    thousands_axis,
)

BLUE, GREY, RED, GREEN = "#1f5fa8", "#888888", "#c0392b", "#27ae60"
# Chart name -> what it shows, in page order (the HTML embeds them all, the markdown the first two).
_plt = pyplot  # the name the tests draw single charts with
__all__ = ["CHARTS", "png_bytes", "render"]
CHARTS = ("returns", "calendar", "rolling", "distribution", "book", "holdings", "attribution")


def render(sheet) -> dict[str, bytes]:
    """name -> PNG bytes: returns (cumulative, log growth, underwater), calendar (monthly heatmap,
    yearly bars), rolling (Sharpe, volatility, beta), distribution, book (exposure, turnover,
    costs), holdings (names held, top holdings over time), attribution."""
    draw = {
        "returns": _returns,
        "calendar": _calendar,
        "rolling": _rolling,
        "distribution": _distribution,
        "book": _book,
        "holdings": _holdings,
        "attribution": _attribution,
    }
    return {name: render_png(draw[name], sheet) for name in CHARTS}


def _returns(plt, sheet):
    r = sheet.returns
    fig, axes = figure(plt, 3, 1, height=8.0, sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.3]})
    series = [(wealth_index(r), BLUE, 1.3, sheet.strategy)]
    if sheet.benchmark is not None:
        series.append((wealth_index(sheet.benchmark), GREY, 1.0, sheet.benchmark_name))
    for w, colour, lw, label in series:
        axes[0].plot(r.index, w - 1.0, color=colour, lw=lw, label=label)
        axes[1].plot(r.index, w, color=colour, lw=lw, label=label)
    axes[0].set_ylabel("cumulative return")
    percent_axis(axes[0].yaxis)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set_title(f"{sheet.strategy}: cumulative return (net of costs)")
    axes[1].set_yscale("log")
    plain_log_axis(axes[1].yaxis)
    axes[1].set_ylabel("growth of 1 (log)")
    axes[2].fill_between(r.index, underwater(r).to_numpy(), 0.0, color=RED, alpha=0.5)
    axes[2].set_ylabel("drawdown")
    percent_axis(axes[2].yaxis)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def _calendar(plt, sheet):
    m = sheet.monthly.drop(columns="year_total")
    fig, (left, right) = figure(plt, 1, 2, height=max(2.8, 0.35 * len(m) + 1.6), gridspec_kw={"width_ratios": [3, 2]})
    vals = m.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 0.01
    image = left.imshow(vals, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    left.set_xticks(range(12), [str(i) for i in range(1, 13)])
    left.set_yticks(range(len(m)), [str(y) for y in m.index])
    # Values are in the HTML table next to it: per-cell labels would triple the drawing time.
    left.set_title("monthly returns")
    bar = fig.colorbar(image, ax=left, fraction=0.05)
    percent_axis(bar.ax.yaxis)
    y = sheet.yearly
    pos = np.arange(len(y))
    right.barh(pos - 0.2, y["strategy"], height=0.4, color=BLUE, label=sheet.strategy)
    if "benchmark" in y:
        right.barh(pos + 0.2, y["benchmark"], height=0.4, color=GREY, label=sheet.benchmark_name)
    right.set_yticks(pos, [str(i) for i in y.index])
    right.invert_yaxis()
    right.axvline(0, color="black", lw=0.6)
    percent_axis(right.xaxis, ticks=4)
    right.legend(fontsize=7)
    right.set_title("yearly returns")
    return fig


def _rolling(plt, sheet):
    kinds = ["sharpe", "volatility"] + (["beta"] if sheet.benchmark is not None else [])
    sessions = int(sheet.returns.notna().sum())
    panel = 2.4 if sessions >= min(ROLLING_WINDOWS) else 1.0  # an empty panel only says what it needs
    fig, axes = figure(plt, len(kinds), 1, height=panel * len(kinds), sharex=True, squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        for w, colour in zip(ROLLING_WINDOWS, (GREY, BLUE)):
            if sessions >= w:
                ax.plot(sheet.rolling.index, sheet.rolling[f"{kind}_{w}"], color=colour, lw=1.0, label=f"{w} sessions")
        if sessions < min(ROLLING_WINDOWS):  # nothing to draw: say why instead of a blank panel
            ax.text(
                0.5,
                0.5,
                f"needs {min(ROLLING_WINDOWS)} sessions ({sessions} so far)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
                color=GREY,
            )
            ax.set_xticks([])
            ax.set_yticks([])
        elif kind == "volatility":
            percent_axis(ax.yaxis)
        ax.set_ylabel(f"rolling {kind}" + (" (annualised)" if kind == "volatility" else ""))
        ax.grid(alpha=0.3)
    if sessions >= min(ROLLING_WINDOWS):
        axes[0, 0].legend(fontsize=7, loc="upper left")
    return fig


def _distribution(plt, sheet):
    r = sheet.returns.dropna().to_numpy()
    fig, ax = figure(plt, height=3.4)
    ax.hist(r, bins=80, color=BLUE, alpha=0.75)
    for cut, style in ((0.05, "--"), (0.01, ":")):
        var = value_at_risk(r, cut)
        ax.axvline(var, color=RED, ls=style, lw=1, label=f"VaR {1 - cut:.0%}: {var:.2%}")
    percent_axis(ax.xaxis)
    ax.set_xlabel("daily return")
    ax.set_ylabel("sessions")
    integer_axis(ax.yaxis)
    ax.set_title(f"daily returns: skew {sheet.metrics['skew']:.2f}, excess kurtosis {sheet.metrics['kurtosis']:.2f}")
    ax.legend(fontsize=7)
    return fig


def _book(plt, sheet):
    b = sheet.book
    fig, axes = figure(plt, 2, 1, height=5.0, sharex=True)
    axes[0].plot(b.index, b["gross_exposure"], color=BLUE, lw=1, label="gross")
    axes[0].plot(b.index, b["net_exposure"], color=GREY, lw=1, label="net")
    axes[0].set_ylabel("exposure (of equity)")
    axes[0].legend(fontsize=7)
    axes[1].plot(b.index, b["turnover"], color=GREY, lw=0.6)  # a line: 2,500 bars cost seconds to draw
    axes[1].set_ylabel("turnover")
    twin = axes[1].twinx()
    twin.plot(b.index, b["cumulative_cost_drag"], color=RED, lw=1)
    twin.set_ylabel("cumulative cost drag", color=RED)
    for ax in (axes[0].yaxis, axes[1].yaxis, twin.yaxis):
        percent_axis(ax)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def _holdings(plt, sheet):
    """pyfolio's holdings view: names held long and short, and the weights of the top holdings."""
    h, w = sheet.holdings, sheet.top_weights
    fig, axes = figure(plt, 2, 1, height=6.0, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    axes[0].step(h.index, h["long_names"], color=BLUE, lw=1, where="post", label="long")
    if (h["short_names"] > 0).any():
        axes[0].step(h.index, h["short_names"], color=RED, lw=1, where="post", label="short")
    integer_axis(axes[0].yaxis)
    axes[0].set_ylabel("names held")
    axes[0].legend(fontsize=7, loc="upper left")
    for symbol in w.columns:
        axes[1].plot(w.index, w[symbol], lw=1, label=str(symbol))
    axes[1].set_ylabel("weight (of equity)")
    percent_axis(axes[1].yaxis)
    axes[1].set_title(f"top {w.shape[1]} holdings by largest weight held")
    if w.shape[1]:
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def _attribution(plt, sheet):
    top, bottom = contributors(sheet.attribution)
    shown = pd.concat([top.set_index("symbol")["pnl"], bottom.set_index("symbol")["pnl"].iloc[::-1]])
    fig, ax = figure(plt, height=max(2.8, 0.24 * len(shown) + 1.2))
    ax.barh(range(len(shown)), shown.to_numpy(), color=[GREEN if x >= 0 else RED for x in shown.to_numpy()])
    ax.set_yticks(range(len(shown)), list(shown.index), fontsize=7)
    ax.invert_yaxis()
    thousands_axis(ax.xaxis)
    ax.set_xlabel("net P&L (currency)")
    ax.set_title("net P&L by name since start: top contributors and detractors")
    ax.grid(alpha=0.3, axis="x")
    return fig
