"""The tearsheet's PNG charts (matplotlib's Agg backend: no display, no network)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.returns import (
    ROLLING_WINDOWS,
    contributors,
    underwater,
    value_at_risk,
    wealth_index,
)

BLUE, GREY, RED, GREEN = "#1f5fa8", "#888888", "#c0392b", "#27ae60"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _layout(fig, top: float = 0.93, bottom: float = 0.08) -> None:
    """Fixed margins: tight_layout measures every label and costs more than the drawing."""
    fig.subplots_adjust(left=0.1, right=0.92, top=top, bottom=bottom, hspace=0.25, wspace=0.25)


def render(sheet) -> dict[str, bytes]:
    """name -> PNG bytes: returns (linear, log, underwater), calendar (monthly heatmap, yearly
    bars), rolling (Sharpe, volatility, beta), distribution, book, attribution."""
    plt = _plt()
    out = {}
    for name, draw in (
        ("returns", _returns),
        ("calendar", _calendar),
        ("rolling", _rolling),
        ("distribution", _distribution),
        ("book", _book),
        ("attribution", _attribution),
    ):
        fig = draw(plt, sheet)
        out[name] = png_bytes(fig)
        plt.close(fig)
    return out


def _returns(plt, sheet):
    r = sheet.returns
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.3]})
    w = wealth_index(r)
    for ax, log in ((axes[0], False), (axes[1], True)):
        ax.plot(r.index, w, color=BLUE, lw=1.3, label=sheet.strategy)
        if sheet.benchmark is not None:
            ax.plot(r.index, wealth_index(sheet.benchmark), color=GREY, lw=1.0, label=sheet.benchmark_name)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel("growth of 1" + (" (log)" if log else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set_title(f"{sheet.strategy}: cumulative return")
    dd = underwater(r)
    axes[2].fill_between(r.index, dd.to_numpy(), 0.0, color=RED, alpha=0.5)
    axes[2].set_ylabel("underwater")
    axes[2].grid(alpha=0.3)
    _layout(fig)
    return fig


def _calendar(plt, sheet):
    m = sheet.monthly.drop(columns="year_total")
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, max(2.5, 0.35 * len(m) + 1.2)), gridspec_kw={"width_ratios": [3, 2]}
    )
    vals = m.to_numpy(dtype=float)
    lim = np.nanmax(np.abs(vals)) if np.isfinite(vals).any() else 0.01
    left.imshow(vals, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    left.set_xticks(range(12), [str(i) for i in range(1, 13)])
    left.set_yticks(range(len(m)), [str(y) for y in m.index])
    # Values are in the HTML table next to it: per-cell labels would triple the drawing time.
    left.set_title("monthly returns")
    y = sheet.yearly
    pos = np.arange(len(y))
    right.barh(pos - 0.2, y["strategy"], height=0.4, color=BLUE, label=sheet.strategy)
    if "benchmark" in y:
        right.barh(pos + 0.2, y["benchmark"], height=0.4, color=GREY, label=sheet.benchmark_name)
    right.set_yticks(pos, [str(i) for i in y.index])
    right.invert_yaxis()
    right.axvline(0, color="black", lw=0.6)
    right.legend(fontsize=7)
    right.set_title("yearly returns")
    _layout(fig, top=0.85, bottom=0.12)
    return fig


def _rolling(plt, sheet):
    kinds = ["sharpe", "volatility"] + (["beta"] if sheet.benchmark is not None else [])
    fig, axes = plt.subplots(len(kinds), 1, figsize=(9, 2.2 * len(kinds)), sharex=True, squeeze=False)
    sessions = int(sheet.returns.notna().sum())
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
        ax.set_ylabel(f"rolling {kind}")
        ax.grid(alpha=0.3)
    if sessions >= min(ROLLING_WINDOWS):
        axes[0, 0].legend(fontsize=7, loc="upper left")
    _layout(fig)
    return fig


def _distribution(plt, sheet):
    r = sheet.returns.dropna().to_numpy()
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.hist(r, bins=80, color=BLUE, alpha=0.75)
    for cut, style in ((0.05, "--"), (0.01, ":")):
        var = value_at_risk(r, cut)
        ax.axvline(var, color=RED, ls=style, lw=1, label=f"VaR {1 - cut:.0%}: {var:.2%}")
    ax.set_title(f"daily returns: skew {sheet.metrics['skew']:.2f}, excess kurtosis {sheet.metrics['kurtosis']:.2f}")
    ax.legend(fontsize=7)
    _layout(fig, top=0.88, bottom=0.1)
    return fig


def _book(plt, sheet):
    b = sheet.book
    fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
    axes[0].plot(b.index, b["gross_exposure"], color=BLUE, lw=1, label="gross")
    axes[0].plot(b.index, b["net_exposure"], color=GREY, lw=1, label="net")
    axes[0].set_ylabel("exposure")
    axes[0].legend(fontsize=7)
    axes[1].step(b.index, b["names"], color=BLUE, lw=1, where="post")
    axes[1].set_ylabel("names held")
    axes[2].plot(b.index, b["turnover"], color=GREY, lw=0.6)  # a line: 2,500 bars cost seconds to draw
    axes[2].set_ylabel("turnover")
    twin = axes[2].twinx()
    twin.plot(b.index, b["cumulative_cost_drag"], color=RED, lw=1)
    twin.set_ylabel("cumulative cost drag", color=RED)
    for ax in axes:
        ax.grid(alpha=0.3)
    _layout(fig)
    return fig


def _attribution(plt, sheet):
    top, bottom = contributors(sheet.attribution)
    shown = pd.concat([top.set_index("symbol")["pnl"], bottom.set_index("symbol")["pnl"].iloc[::-1]])
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.22 * len(shown) + 1)))
    ax.barh(range(len(shown)), shown.to_numpy(), color=[GREEN if x >= 0 else RED for x in shown.to_numpy()])
    ax.set_yticks(range(len(shown)), list(shown.index), fontsize=7)
    ax.invert_yaxis()
    ax.set_title("net P&L by name since start: top contributors and detractors")
    ax.grid(alpha=0.3, axis="x")
    _layout(fig)
    return fig


def png_bytes(fig, dpi: int = 72) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
