"""The one matplotlib-to-PNG helper: the Agg backend (no display, no network), a figure drawn by a
function, saved to PNG bytes and always closed. Every chart of the project goes through it
(tearsheets, the leaderboard, feature IC, the backtest summary).

Figures are full page width (``WIDTH`` inches at ``DPI``: 960 pixels, the width of the HTML
tearsheet) and use matplotlib's constrained layout, which makes room for every axis label and
title (fixed margins clipped the long ones). Quantities that are fractions are shown in percent
(``percent_axis``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

WIDTH = 12.0  # inches
DPI = 80


def pyplot():
    """matplotlib.pyplot on the Agg backend (selected before pyplot is first imported)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def png_bytes(fig, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes (it stays open: ``render_png`` closes what it draws)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_png(draw: Callable[..., Any], *args, dpi: int = DPI, **kwargs) -> bytes:
    """``draw(plt, *args, **kwargs)`` returns a figure; its PNG bytes. Every figure the call opened
    is closed, even when drawing or saving fails (an open figure per call would grow a long-lived
    process)."""
    plt = pyplot()
    before = set(plt.get_fignums())
    try:
        return png_bytes(draw(plt, *args, **kwargs), dpi)
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def figure(plt, nrows: int = 1, ncols: int = 1, height: float = 4.0, width: float = WIDTH, **kwargs):
    """``plt.subplots`` at full page width with constrained layout (no clipped labels)."""
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kwargs)


def percent_axis(axis, decimals: int | None = None, ticks: int | None = None) -> None:
    """Ticks of a fraction axis in percent (0.05 -> 5%): ``ax.yaxis`` or ``ax.xaxis``; ``ticks``:
    at most about that many (a narrow horizontal axis)."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    if ticks is not None:
        axis.set_major_locator(MaxNLocator(ticks))
    axis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def plain_log_axis(axis, ticks: int = 6) -> None:
    """A log axis labelled 0.95, 1.00, 1.05 (not 9.5 x 10^-1), about ``ticks`` ticks."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    axis.set_major_locator(MaxNLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2f}"))
    axis.set_minor_formatter(NullFormatter())


def integer_axis(axis) -> None:
    """Whole-number ticks only (counts: names held)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def thousands_axis(axis) -> None:
    """Currency amounts with thousands separators (12,500), no scientific offset."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
