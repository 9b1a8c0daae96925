"""``compute_features``: leakage-free features from ohlcv bars, and the public API of the features.

A preset is data (``presets/*.yaml``): a named list of ``{name, kind, params}``. Kinds come
from the fixed registry ``KINDS``; each kind declares its parameters (a pydantic model), its
window in sessions and its computation from the kernels. There is no expression language: a
new formula is a new kind, written and tested in ``kinds`` (or ``toolbox``).

Every feature of date D is a pure function of the bars in D's own window (the last
``window`` sessions up to and including D) and is computed on exact fixed-point integers
(see ``kernels``), so features computed one date at a time equal a batch computation bit
for bit, and bars after D can never change them.

Prices are adjusted: ``adj_open/high/low = open/high/low * adj_close / close``. The session
axis is the NYSE calendar between the first and last bar (plus any date that carries bars):
a session without a bar is a missing bar, and every window containing a missing bar is NaN.
Returns and ratios are computed in log space from quantised logs, ``expm1`` turning log
differences back into simple returns. The standard indicators that are defined on prices
(SMA ratio, Bollinger %B, Wilder's RSI and ATR, as TA-Lib and ``ta`` define them) are computed
on the adjusted prices as floats with elementwise operations and window sums taken in a fixed
order (``kernels.geometric_window_sum``), which keeps them bit-identical wherever the loaded
array starts.

This module computes (the panel in blocks of symbols, then the cross-sectional kinds in blocks
of dates) and re-exports the public names of the concerns it is built from: ``panel`` (the bars
as arrays), ``kinds`` (the registry), ``preset`` (preset files), ``coverage`` (where a feature can
have a value, and the share missing there, for the gate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core.coverage import definable, distinct_per_date, missing_rates
from quantlab_assets.feature_store.core.kinds import (
    KINDS,
    KINDS_VERSION,
    MAX_EMA_SPAN,
    MAX_SPREAD_WINDOW,
    MAX_WINDOW,
    BollingerParams,
    CandleParams,
    CrossSectionParams,
    EmaParams,
    Kind,
    MacdParams,
    MomentumParams,
    NoParams,
    ReturnParams,
    Span,
    SpreadParams,
    SpreadWindow,
    VolatilityParams,
    WilderParams,
    Window,
    WindowParams,
)
from quantlab_assets.feature_store.core.panel import BAR_FIELDS, OHLCV_COLUMNS, BlockInputs, Panel, pivot_panel
from quantlab_assets.feature_store.core.preset import (
    DEFAULT_PRESET_FILE,
    RESERVED_NAMES,
    FeaturePreset,
    FeatureSpec,
    PresetError,
    load_preset,
)

__all__ = [
    "BAR_FIELDS",
    "BLOCK_DATES",
    "BLOCK_SYMBOLS",
    "DEFAULT_PRESET_FILE",
    "KINDS",
    "KINDS_VERSION",
    "MAX_EMA_SPAN",
    "MAX_SPREAD_WINDOW",
    "MAX_WINDOW",
    "OHLCV_COLUMNS",
    "RESERVED_NAMES",
    "BollingerParams",
    "CandleParams",
    "CrossSectionParams",
    "EmaParams",
    "FeatureOverflow",
    "FeaturePreset",
    "FeatureSpec",
    "Kind",
    "MacdParams",
    "MomentumParams",
    "NoParams",
    "Panel",
    "PresetError",
    "ReturnParams",
    "Span",
    "SpreadParams",
    "SpreadWindow",
    "VolatilityParams",
    "WilderParams",
    "Window",
    "WindowParams",
    "compute_features",
    "definable",
    "describe_overflow",
    "distinct_per_date",
    "load_preset",
    "market_proxy",
    "missing_rates",
    "pivot_panel",
]

# Work is done in blocks so temporaries stay in cache instead of streaming 10 MB arrays
# through memory: per-symbol features on all dates of 64 symbols (2520 x 64 float64 is 1.3 MB),
# cross-sectional ones on 256 dates of every symbol.
BLOCK_SYMBOLS = 64
BLOCK_DATES = 256


def market_proxy(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight market proxy: each date's mean daily log return (fixed point) over the
    symbols that have one, and whether any does; shapes (T,)."""
    return nb.cs_mean_exact(*nb.diff(*nb.quantize_log(panel.arrays["adj_close"])))


def compute_features(ohlcv: pd.DataFrame, preset: FeaturePreset, start, end) -> pd.DataFrame:
    """Features of ``preset`` for every (date, symbol) bar dated in [start, end].

    Parameters
    ----------
    ohlcv : DataFrame
        Long bars with at least date, symbol, open, high, low, close, adj_close, volume,
        reaching ``preset.lookback_sessions`` sessions before ``start`` when available.
        Not modified.
    preset : FeaturePreset
    start, end : date-like
        Inclusive range of output dates.

    Returns
    -------
    DataFrame
        ``date, symbol, warm`` and the preset's features in declared order (float64), sorted
        by (symbol, date). ``warm`` is True when the symbol's bars reach
        ``preset.warmup_sessions`` sessions before the date, so every window lies inside the
        data; rows in warm-up keep NaN where a window is incomplete. NaN also marks windows
        with a missing bar and undefined values (a flat window's RSI or z-score).
    """
    panel = pivot_panel(ohlcv)
    rows = _output_rows(panel, start, end)
    # Feature-major values of the output rows; block.T becomes the frame's floats without a copy.
    block = np.empty((len(preset.features), len(rows.symbol)))
    sources = _per_symbol_features(panel, preset, rows, block)
    _cross_sectional_features(panel, preset, sources, rows, block)
    frame = pd.DataFrame(block.T, columns=preset.feature_names, copy=False)
    first_bar = panel.present.argmax(axis=0) if len(panel.dates) else np.zeros(0, dtype=np.int64)
    frame.insert(0, "warm", rows.date - first_bar[rows.symbol] >= preset.warmup_sessions)
    frame.insert(0, "symbol", panel.symbols[rows.symbol])
    frame.insert(0, "date", panel.dates[rows.date])
    return frame


@dataclass(frozen=True)
class _OutputRows:
    """The output rows, the panel's bars dated in [start, end] in (symbol, date) order: their
    symbol and date indices, and the panel's date range [t_lo, t_hi) they span."""

    symbol: np.ndarray
    date: np.ndarray
    t_lo: int
    t_hi: int


def _output_rows(panel: Panel, start, end) -> _OutputRows:
    n_dates = len(panel.dates)
    t_lo = int(panel.dates.searchsorted(pd.Timestamp(start).normalize()))
    t_hi = int(panel.dates.searchsorted(pd.Timestamp(end).normalize(), side="right"))
    selected = np.zeros_like(panel.present)
    selected[t_lo:t_hi] = panel.present[t_lo:t_hi]
    # Symbol-major, so the rows come sorted by (symbol, date).
    sym_idx, t_idx = np.divmod(np.flatnonzero(selected.T), n_dates)
    return _OutputRows(sym_idx, t_idx, t_lo, t_hi)


def _per_symbol_features(
    panel: Panel, preset: FeaturePreset, rows: _OutputRows, block: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-symbol features on every date of a block of symbols at a time, into ``block``; returns
    the sources of the cross-sectional features, whole, for the per-date transforms after."""
    n_symbols = len(panel.symbols)
    market = market_proxy(panel)
    sources = {
        spec.source_feature: np.empty(panel.present.shape)
        for spec in preset.features
        if KINDS[spec.kind].cross_sectional
    }
    for first in range(0, n_symbols, BLOCK_SYMBOLS):
        cols = slice(first, min(first + BLOCK_SYMBOLS, n_symbols))
        inputs = BlockInputs({f: np.ascontiguousarray(a[:, cols]) for f, a in panel.arrays.items()}, market)
        out = slice(*np.searchsorted(rows.symbol, [cols.start, cols.stop]))
        cells = rows.date[out] * (cols.stop - cols.start) + (rows.symbol[out] - cols.start)
        for i, spec in enumerate(preset.features):
            kind = KINDS[spec.kind]
            if kind.cross_sectional:
                continue
            try:
                values = kind.compute(inputs, spec.parsed_params)
            except nb.WindowOverflow as exc:
                raise FeatureOverflow(describe_overflow(panel, spec.name, exc, first)) from None
            np.take(values.ravel(), cells, out=block[i, out], mode="clip")  # in range; "raise" buffers `out`
            if spec.name in sources:
                sources[spec.name][:, cols] = values
    return sources


class FeatureOverflow(OverflowError):
    """A feature's window cannot be represented; the message names symbol, date and value."""


def describe_overflow(panel: Panel, feature: str, exc: nb.WindowOverflow, first_col: int) -> str:
    """One line: the feature, the symbol, the window's last date and its most extreme bar value."""
    j = first_col + exc.col
    lo = max(exc.row - exc.window + 1, 0)
    worst = ("adj_close", lo, float("nan"), -1.0)
    for field in ("adj_close", "volume"):
        series = panel.arrays[field][lo : exc.row + 1, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(np.where(series > 0, series, np.nan))
        if np.isfinite(logs).any():
            logs = np.abs(logs - np.nanmedian(logs))  # the bar farthest from the window's typical one
            k = int(np.nanargmax(logs))
            if logs[k] > worst[3]:
                worst = (field, lo + k, float(series[k]), float(logs[k]))
    field, t, value, _ = worst
    return (
        f"feature {feature} (window {exc.window}) overflows for {panel.symbols[j]} on "
        f"{pd.Timestamp(panel.dates[exc.row]).date()}: its window holds {field} {value:g} on "
        f"{pd.Timestamp(panel.dates[t]).date()}, beyond what the feature store represents; "
        "correct or delete that bar in ohlcv (re-ingest it) and re-run"
    )


def _cross_sectional_features(
    panel: Panel, preset: FeaturePreset, sources: dict[str, np.ndarray], rows: _OutputRows, block: np.ndarray
) -> None:
    """Cross-sectional features on a block of output dates at a time (each date is one row), into ``block``."""
    cells = rows.date * len(panel.symbols) + rows.symbol
    transformed = np.empty(panel.present.shape)
    for i, spec in enumerate(preset.features):
        kind = KINDS[spec.kind]
        if not kind.cross_sectional:
            continue
        for first in range(rows.t_lo, rows.t_hi, BLOCK_DATES):
            span = slice(first, min(first + BLOCK_DATES, rows.t_hi))
            transformed[span] = kind.compute(sources[spec.source_feature][span])
        np.take(transformed.ravel(), cells, out=block[i], mode="clip")
