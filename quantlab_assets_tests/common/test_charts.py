"""The one matplotlib-to-PNG helper (issue 21 item 4): every chart goes through it, it returns a PNG
of the asked size and never leaves a figure open, even when drawing fails."""

from __future__ import annotations

from pathlib import Path

import pytest

import quantlab_assets
from quantlab_assets.common import charts


def _line(plt, values, fail=False):
    fig, ax = charts.figure(plt, height=2.0)
    ax.plot(values)
    charts.percent_axis(ax.yaxis)
    if fail:
        raise RuntimeError("drawing failed")
    return fig


def test_render_png_gives_a_full_width_png_and_closes_the_figure():
    plt = charts.pyplot()
    before = set(plt.get_fignums())
    png = charts.render_png(_line, [0.01, 0.03, -0.02])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (charts.WIDTH * charts.DPI, 2.0 * charts.DPI) == (960, 160)
    assert set(plt.get_fignums()) == before
    with pytest.raises(RuntimeError, match="drawing failed"):
        charts.render_png(_line, [0.01], fail=True)
    assert set(plt.get_fignums()) == before  # closed although the draw raised


def test_percent_axis_labels_fractions_in_percent():
    plt = charts.pyplot()
    fig, ax = charts.figure(plt)
    try:
        charts.percent_axis(ax.yaxis)
        assert ax.yaxis.get_major_formatter()(0.05, 0) == "5%"
        charts.percent_axis(ax.xaxis, decimals=1)
        assert ax.xaxis.get_major_formatter()(-0.123, 0).replace("\u2212", "-") == "-12.3%"  # a typographic minus
    finally:
        plt.close(fig)


def test_every_chart_goes_through_the_helper():
    """No module but common/charts.py selects a backend or saves a figure."""
    root = Path(quantlab_assets.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "charts.py" or path.parent.name != "common"
        if any(token in path.read_text(encoding="utf-8") for token in ("savefig(", "matplotlib.use(", "BytesIO()"))
    ]
    assert offenders == []
