"""Feature specs, presets and ``compute_features``: leakage-free features from ohlcv bars.

A preset is data (``presets/*.yaml``): a named list of ``{name, kind, params}``. Kinds come
from the fixed registry ``KINDS`` below; each kind declares its parameters (a pydantic
model), its window in sessions and its computation from the kernels. There is no
expression language: a new formula is a new kind, written and tested here.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from quantlab_assets.common.calendar import SESSIONS_PER_YEAR, trading_days
from quantlab_assets.common.yaml_io import FrozenModel, StrictFrozenModel, describe_validation_error, read_yaml
from quantlab_assets.data_curator.core.bars import adjusted, adjusted_volume
from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core import toolbox as tb
from quantlab_assets.feature_store.core.kernels import SCALE

DEFAULT_PRESET_FILE = Path(__file__).resolve().parents[1] / "presets" / "default.yaml"
KINDS_VERSION = "3"
"""Bumped whenever a kind's computation changes: part of the features' code version with the
preset's content (2: rsi, atr_pct, sma_ratio and bollinger_pctb became the standard indicators;
3: volume features read volume in adjusted shares)."""
OHLCV_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "adj_close", "volume")
BAR_FIELDS = ("open", "high", "low", "close", "adj_close", "volume")
MAX_WINDOW = 504
# Variance-type windows: their int64 sums of squares stay exact for any realistic dispersion
# up to here (see kernels.centered_sum_squares).
MAX_SPREAD_WINDOW = 252
MAX_EMA_SPAN = 100
# Work is done in blocks so temporaries stay in cache instead of streaming 10 MB arrays
# through memory: per-symbol features on all dates of 64 symbols (2520 x 64 float64 is 1.3 MB),
# cross-sectional ones on 256 dates of every symbol.
BLOCK_SYMBOLS = 64
BLOCK_DATES = 256


class PresetError(ValueError):
    """A preset file is unreadable or invalid; the message names the file, feature and field."""


# --------------------------------------------------------------------------- panel


@dataclass(frozen=True)
class Panel:
    """Long ohlcv rows as 2-D arrays: ``arrays[field][t, j]`` is ``field`` of ``symbols[j]`` on ``dates[t]``.

    ``present`` marks (date, symbol) pairs that have a row in the input; values of absent
    pairs are NaN.
    """

    dates: pd.DatetimeIndex
    symbols: pd.Index
    arrays: dict[str, np.ndarray]
    present: np.ndarray


def pivot_panel(ohlcv: pd.DataFrame) -> Panel:
    """Pivot long ohlcv rows (date, symbol, open, high, low, close, adj_close, volume) to a Panel.

    Symbols are sorted; dates are the NYSE sessions from the first to the last bar plus any
    other date that carries bars. Duplicate (date, symbol) rows are an error.
    """
    missing = [c for c in OHLCV_COLUMNS if c not in ohlcv.columns]
    if missing:
        raise ValueError(f"ohlcv lacks columns {missing}")
    day = pd.to_datetime(ohlcv["date"]).dt.normalize()
    if day.isna().any():
        raise ValueError(f"ohlcv has {int(day.isna().sum())} rows without a date")
    sym_codes, symbols = pd.factorize(ohlcv["symbol"].astype(str), sort=True)
    if len(ohlcv):
        dates = trading_days(day.min(), day.max()).union(pd.DatetimeIndex(day.unique())).sort_values()
    else:
        dates = pd.DatetimeIndex([])
    t_codes = dates.get_indexer(day)
    shape = (len(dates), len(symbols))
    present = np.zeros(shape, dtype=bool)
    present[t_codes, sym_codes] = True
    if present.sum() != len(ohlcv):
        dup = ohlcv[pd.DataFrame({"d": day, "s": ohlcv["symbol"]}).duplicated(keep=False).to_numpy()]
        first = dup.iloc[0]
        raise ValueError(
            f"ohlcv has {len(dup)} rows sharing a (date, symbol), first "
            f"{first['symbol']} {pd.Timestamp(first['date']).date()}"
        )
    arrays = {}
    for field in BAR_FIELDS:
        arr = np.full(shape, np.nan)
        arr[t_codes, sym_codes] = ohlcv[field].to_numpy(dtype=np.float64)
        arrays[field] = arr
    return Panel(dates=dates, symbols=pd.Index(symbols, dtype=object), arrays=arrays, present=present)


class _Inputs:
    """Quantised series of a block of symbols, derived once and shared by the features.

    Each is ``(q, valid)``: int64 fixed-point logs and their validity (see ``kernels``).
    ``market`` is the (T,) market proxy of the whole panel, shared by every block.
    """

    def __init__(self, arrays: dict[str, np.ndarray], market: tuple[np.ndarray, np.ndarray]):
        self.arrays = arrays
        self._market = market
        self._emas: dict[int, np.ndarray] = {}
        self._macds: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _adjusted(self, field: str) -> tuple[np.ndarray, np.ndarray]:
        a = self.arrays
        return nb.quantize_log(adjusted(a[field], a["adj_close"], a["close"]))

    @cached_property
    def close(self) -> tuple[np.ndarray, np.ndarray]:
        """Log adjusted close."""
        return nb.quantize_log(self.arrays["adj_close"])

    @cached_property
    def open(self) -> tuple[np.ndarray, np.ndarray]:
        return self._adjusted("open")

    @cached_property
    def high(self) -> tuple[np.ndarray, np.ndarray]:
        return self._adjusted("high")

    @cached_property
    def low(self) -> tuple[np.ndarray, np.ndarray]:
        return self._adjusted("low")

    def price(self, field: str) -> np.ndarray:
        """An adjusted price as float (NaN where missing or not positive)."""
        a = self.arrays
        x = a["adj_close"] if field == "close" else adjusted(a[field], a["adj_close"], a["close"])
        return np.where(np.isfinite(x) & (x > 0), x, np.nan)

    @cached_property
    def ret(self) -> tuple[np.ndarray, np.ndarray]:
        """Daily log return of the adjusted close."""
        return nb.diff(*self.close)

    @cached_property
    def volume(self) -> tuple[np.ndarray, np.ndarray]:
        """Log volume in adjusted shares (a split moves it no more than it moves prices)."""
        a = self.arrays
        return nb.quantize_log(adjusted_volume(a["volume"], a["adj_close"], a["close"]))

    @cached_property
    def dollar_volume(self) -> tuple[np.ndarray, np.ndarray]:
        """Log of unadjusted close x volume (what actually traded)."""
        return nb.quantize_log(self.arrays["close"] * self.arrays["volume"])

    @cached_property
    def market(self) -> tuple[np.ndarray, np.ndarray]:
        """The market proxy's daily log return, broadcast to this block's shape."""
        shape = self.arrays["close"].shape
        mean, ok = self._market
        return np.broadcast_to(mean[:, None], shape), np.broadcast_to(ok[:, None], shape)

    def ema_close(self, span: int) -> np.ndarray:
        """Truncated EMA of the quantised log close (still in fixed-point units, as float)."""
        if span not in self._emas:
            q, valid = self.close
            self._emas[span] = nb.truncated_ema(np.where(valid, q, np.nan), span)
        return self._emas[span]

    def macd(self, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
        """(MACD line, signal line) on log price, in log units."""
        key = (fast, slow, signal)
        if key not in self._macds:
            line = (self.ema_close(fast) - self.ema_close(slow)) / SCALE
            self._macds[key] = (line, nb.truncated_ema(line, signal))
        return self._macds[key]


# --------------------------------------------------------------------------- kinds

Window = Annotated[int, Field(ge=1, le=MAX_WINDOW)]
SpreadWindow = Annotated[int, Field(ge=2, le=MAX_SPREAD_WINDOW)]
Span = Annotated[int, Field(ge=1, le=MAX_EMA_SPAN)]


class _Params(StrictFrozenModel):
    """An indicator's parameters: strict types (a quoted or fractional window is an error)."""


class ReturnParams(_Params):
    horizon: Window
    log: bool = False


class MomentumParams(_Params):
    lookback: Window
    skip: int = Field(ge=0)

    @model_validator(mode="after")
    def _skip_inside(self) -> MomentumParams:
        if self.skip >= self.lookback:
            raise ValueError(f"skip ({self.skip}) must be smaller than lookback ({self.lookback})")
        return self


class WindowParams(_Params):
    window: Window


class SpreadParams(_Params):
    window: SpreadWindow


class VolatilityParams(_Params):
    window: SpreadWindow
    periods_per_year: int = Field(SESSIONS_PER_YEAR, ge=1)


class WilderParams(_Params):
    # Up to 31: the truncated window (K + 1 sessions) must stay within MAX_WINDOW.
    window: Annotated[int, Field(ge=2, le=31)]


class BollingerParams(_Params):
    window: SpreadWindow
    num_std: float = Field(2.0, gt=0)


class EmaParams(_Params):
    span: Span


class MacdParams(_Params):
    fast: Span = 12
    slow: Span = 26
    signal: Span = 9
    output: Literal["macd", "signal", "hist"]

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class CandleParams(_Params):
    part: Literal["body_ratio", "upper_shadow", "lower_shadow", "range_pct"]


class NoParams(_Params):
    pass


class CrossSectionParams(_Params):
    of: str


def _return(inp: _Inputs, p: ReturnParams) -> np.ndarray:
    q, valid = inp.close
    change, _ = nb.diff(q, valid, p.horizon)
    logret = change / SCALE
    return nb.set_nan(logret if p.log else np.expm1(logret), nb.window_valid(valid, p.horizon + 1))


def _momentum(inp: _Inputs, p: MomentumParams) -> np.ndarray:
    q, valid = inp.close
    recent, _ = nb.lag(q, valid, p.skip)
    old, _ = nb.lag(q, valid, p.lookback)
    return nb.set_nan(np.expm1((recent - old) / SCALE), nb.window_valid(valid, p.lookback + 1))


def _sma_ratio(inp: _Inputs, p: WindowParams) -> np.ndarray:
    close = inp.price("close")
    return close / nb.rolling_mean_float(close, p.window) - 1.0


def _sma_log_ratio(inp: _Inputs, p: WindowParams) -> np.ndarray:
    q, valid = inp.close
    sums, ok = nb.rolling_sum_exact(q, valid, p.window)
    return nb.set_nan((p.window * q - sums) / (p.window * SCALE), ok)


def _ema_ratio(inp: _Inputs, p: EmaParams) -> np.ndarray:
    q, _ = inp.close  # an invalid close is NaN inside the EMA, so no mask is needed
    return np.expm1((q - inp.ema_close(p.span)) / SCALE)


def _macd(inp: _Inputs, p: MacdParams) -> np.ndarray:
    line, signal = inp.macd(p.fast, p.slow, p.signal)
    return {"macd": line, "signal": signal, "hist": line - signal}[p.output]


def _volatility(inp: _Inputs, p: VolatilityParams) -> np.ndarray:
    return nb.rolling_std(*inp.ret, p.window, ddof=1) * math.sqrt(p.periods_per_year)


def _previous_close(inp: _Inputs) -> np.ndarray:
    close = inp.price("close")
    prev = np.full_like(close, np.nan)
    prev[1:] = close[:-1]
    return prev


def _rsi(inp: _Inputs, p: WilderParams) -> np.ndarray:
    return nb.wilder_rsi(inp.price("close") - _previous_close(inp), p.window)


def _rsi_cutler(inp: _Inputs, p: WindowParams) -> np.ndarray:
    return nb.rsi(*inp.ret, p.window)


def _bollinger_pctb(inp: _Inputs, p: BollingerParams) -> np.ndarray:
    close = inp.price("close")
    mean = nb.rolling_mean_float(close, p.window)
    std = nb.rolling_pop_std_float(close, mean, p.window)
    with np.errstate(divide="ignore", invalid="ignore"):
        # (C - (m - k s)) / (2 k s), the position of the close inside the bands.
        return nb.set_nan((close - (mean - p.num_std * std)) / (2.0 * p.num_std * std), std != 0)


def _atr_pct(inp: _Inputs, p: WilderParams) -> np.ndarray:
    prev = _previous_close(inp)
    true_range = np.fmax(inp.price("high"), prev) - np.fmin(inp.price("low"), prev)
    true_range[np.isnan(prev)] = np.nan  # fmax/fmin would drop a missing previous close
    return nb.geometric_window_sum(true_range, nb.wilder_weights(p.window)) / inp.price("close")


def _volume_z(inp: _Inputs, p: SpreadParams) -> np.ndarray:
    q, valid = inp.volume
    w = p.window
    m, sums, ok = nb.centered_sum_squares(q, valid, w)
    ok &= m != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # (x - mean) / std with std = sqrt(M / (w (w - 1))), from exact integers.
        return nb.set_nan((w * q - sums) / np.sqrt(m * (w / (w - 1))), ok)


def _log_dollar_volume(inp: _Inputs, p: WindowParams) -> np.ndarray:
    return nb.rolling_mean(*inp.dollar_volume, p.window)


def _dist_high(inp: _Inputs, p: WindowParams) -> np.ndarray:
    q, valid = inp.close
    return np.expm1(q / SCALE - nb.rolling_max(q, valid, p.window))


def _dist_low(inp: _Inputs, p: WindowParams) -> np.ndarray:
    q, valid = inp.close
    return np.expm1(q / SCALE - nb.rolling_min(q, valid, p.window))


def _beta(inp: _Inputs, p: SpreadParams) -> np.ndarray:
    r, vr = inp.ret
    m, vm = inp.market
    return nb.rolling_beta(r, m, vr & vm, p.window)


def _corr(inp: _Inputs, p: SpreadParams) -> np.ndarray:
    r, vr = inp.ret
    m, vm = inp.market
    return nb.rolling_corr(r, m, vr & vm, p.window)


def _candle(inp: _Inputs, p: CandleParams) -> np.ndarray:
    (o, vo), (h, vh), (lo, vl), (c, vc) = inp.open, inp.high, inp.low, inp.close
    ok = vo & vh & vl & vc
    if p.part == "body_ratio":
        rng = h - lo
        ok &= rng != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return nb.set_nan((c - o) / rng, ok)
    top, bottom = {"upper_shadow": (h, np.maximum(o, c)), "lower_shadow": (np.minimum(o, c), lo), "range_pct": (h, lo)}[
        p.part
    ]
    return nb.set_nan(np.expm1((top - bottom) / SCALE), ok)


def _gap(inp: _Inputs, p: NoParams) -> np.ndarray:
    o, vo = inp.open
    prev, vp = nb.lag(*inp.close, 1)
    return nb.set_nan(np.expm1((o - prev) / SCALE), vo & vp)


def _ema_lags(span: int) -> int:
    return len(nb.ema_weights(span))


def _wilder_window(p: WilderParams) -> int:
    return len(nb.wilder_weights(p.window)) + 1  # K changes need K + 1 closes


def _macd_window(p: MacdParams) -> int:
    line = max(_ema_lags(p.fast), _ema_lags(p.slow))
    return line if p.output == "macd" else line + _ema_lags(p.signal) - 1


@dataclass(frozen=True)
class Kind:
    """A feature kind: its parameters, its window (sessions up to and including D) and its
    computation. Cross-sectional kinds transform another feature's 2-D array per date."""

    params: type[FrozenModel]
    window: Callable[[Any], int]
    compute: Callable[..., np.ndarray]
    cross_sectional: bool = False
    # Cross-sectional kinds: the fewest distinct source values a date needs for a value (a
    # z-score needs a spread, so two; a rank is defined for one name).
    min_distinct: int = 1


KINDS: dict[str, Kind] = {
    "return": Kind(ReturnParams, lambda p: p.horizon + 1, _return),
    "momentum": Kind(MomentumParams, lambda p: p.lookback + 1, _momentum),
    "sma_ratio": Kind(WindowParams, lambda p: p.window, _sma_ratio),
    "sma_log_ratio": Kind(WindowParams, lambda p: p.window, _sma_log_ratio),
    "ema_ratio": Kind(EmaParams, lambda p: _ema_lags(p.span), _ema_ratio),
    "macd": Kind(MacdParams, _macd_window, _macd),
    "volatility": Kind(VolatilityParams, lambda p: p.window + 1, _volatility),
    "rsi": Kind(WilderParams, _wilder_window, _rsi),
    "rsi_cutler": Kind(WindowParams, lambda p: p.window + 1, _rsi_cutler),
    "bollinger_pctb": Kind(BollingerParams, lambda p: p.window, _bollinger_pctb),
    "atr_pct": Kind(WilderParams, _wilder_window, _atr_pct),
    "volume_z": Kind(SpreadParams, lambda p: p.window, _volume_z),
    "log_dollar_volume": Kind(WindowParams, lambda p: p.window, _log_dollar_volume),
    "dist_high": Kind(WindowParams, lambda p: p.window, _dist_high),
    "dist_low": Kind(WindowParams, lambda p: p.window, _dist_low),
    "beta": Kind(SpreadParams, lambda p: p.window + 1, _beta),
    "corr": Kind(SpreadParams, lambda p: p.window + 1, _corr),
    "candle": Kind(CandleParams, lambda p: 1, _candle),
    "gap": Kind(NoParams, lambda p: 2, _gap),
    # The single-asset toolbox (toolbox.py; adding kinds changes no existing feature's values).
    "ma_cross": Kind(tb.MaCrossParams, tb.ma_cross_window, tb.ma_cross),
    "donchian": Kind(tb.DonchianParams, lambda p: p.window + (p.output == "breakout"), tb.donchian),
    "roc": Kind(tb.RocParams, lambda p: p.window + 1, tb.roc),
    "zscore": Kind(tb.ZscoreParams, lambda p: p.window, tb.zscore),
    "stochastic": Kind(tb.StochasticParams, tb.stochastic_window, tb.stochastic),
    "williams_r": Kind(tb.RangeParams, lambda p: p.window, tb.williams_r),
    "cci": Kind(tb.CciParams, lambda p: p.window, tb.cci),
    # The window of a cross-sectional feature is its source's (resolved by the preset).
    "cs_zscore": Kind(CrossSectionParams, lambda p: 1, nb.cs_zscore, cross_sectional=True, min_distinct=2),
    "cs_rank": Kind(CrossSectionParams, lambda p: 1, nb.cs_rank, cross_sectional=True),
}


# --------------------------------------------------------------------------- presets


RESERVED_NAMES = ("date", "symbol", "warm")
"""Key and flag columns of the ``features`` table (and of labels/targets joins): no feature may take them."""


class FeatureSpec(FrozenModel):
    """One output column: ``name`` computed by registry kind ``kind`` with ``params``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    _parsed: FrozenModel = PrivateAttr()

    @model_validator(mode="after")
    def _parse_params(self) -> FeatureSpec:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"kind: unknown kind {self.kind!r} (valid kinds: {', '.join(sorted(KINDS))})")
        try:
            self._parsed = kind.params.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(f"params{''.join(f'.{part}' for part in err['loc'])}: {err['msg']}" for err in exc.errors())
            ) from None
        return self

    @property
    def parsed_params(self) -> FrozenModel:
        """``params`` validated by the kind's model, defaults filled in."""
        return self._parsed

    @property
    def source_feature(self) -> str:
        """A cross-sectional feature's source: ``params.of`` (its kinds all take CrossSectionParams)."""
        return cast(CrossSectionParams, self._parsed).of


class FeaturePreset(FrozenModel):
    """A named, ordered list of features: the declared schema of the ``features`` table."""

    name: str = Field(min_length=1)
    description: str = ""
    # Not Field(min_length=1): pydantic would repeat it whenever a feature fails to validate.
    features: tuple[FeatureSpec, ...]

    @model_validator(mode="after")
    def _names_and_sources(self) -> FeaturePreset:
        if not self.features:
            raise ValueError("features: a preset needs at least one feature")
        seen: dict[str, FeatureSpec] = {}
        for spec in self.features:
            if spec.name in RESERVED_NAMES:
                raise ValueError(
                    f"feature {spec.name!r}: name: reserved for a column of the features table "
                    f"({', '.join(RESERVED_NAMES)}); rename the feature"
                )
            if spec.name in seen:
                raise ValueError(f"feature {spec.name!r}: name: declared twice")
            if KINDS[spec.kind].cross_sectional:
                source = seen.get(spec.source_feature)
                if source is None or KINDS[source.kind].cross_sectional:
                    raise ValueError(
                        f"feature {spec.name!r}: params.of: {spec.source_feature!r} is not "
                        "a non-cross-sectional feature declared before it"
                    )
            seen[spec.name] = spec
        return self

    @property
    def feature_names(self) -> list[str]:
        """Output feature columns in declared order."""
        return [spec.name for spec in self.features]

    def window_of(self, name: str) -> int:
        """Sessions (up to and including D) that feature ``name`` reads."""
        spec = next(s for s in self.features if s.name == name)
        kind = KINDS[spec.kind]
        if kind.cross_sectional:
            return self.window_of(spec.source_feature)
        return kind.window(spec.parsed_params)

    @property
    def lookback_sessions(self) -> int:
        """The longest window any feature reads, in sessions up to and including D."""
        return max(self.window_of(name) for name in self.feature_names)

    @property
    def warmup_sessions(self) -> int:
        """Sessions of history a date needs before it: a symbol's first ``warmup_sessions``
        bars are never warm."""
        return self.lookback_sessions - 1


def load_preset(path: str | Path | None = None) -> FeaturePreset:
    """Load and validate a preset file (default: the packaged ``presets/default.yaml``).

    Raises
    ------
    PresetError
        The file is missing, not YAML, or invalid; the message names the file, the feature
        and the field.
    """
    path = Path(path) if path else DEFAULT_PRESET_FILE
    raw = read_yaml(path, "feature preset", PresetError)
    if not isinstance(raw, dict):
        raise PresetError(f"{path}: expected a mapping with 'name' and 'features'")
    try:
        return FeaturePreset.model_validate(raw)
    except ValidationError as exc:
        raise PresetError(f"{path}: {describe_validation_error(exc, raw, {'features': 'name'})}") from exc


# --------------------------------------------------------------------------- compute


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
        inputs = _Inputs({f: np.ascontiguousarray(a[:, cols]) for f, a in panel.arrays.items()}, market)
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


# --------------------------------------------------------------------------- quality


def _distinct_per_date(dates: pd.Series, values: np.ndarray, at_least: int) -> np.ndarray:
    """Per row, whether its date has at least ``at_least`` distinct finite ``values``
    (``groupby(date).nunique() >= at_least`` broadcast to the rows, without a group per date);
    False on a row without a date."""
    codes, uniques = pd.factorize(dates)
    finite = np.isfinite(values) & (codes >= 0)
    if at_least <= 2:  # one value: any finite; two: the smallest differs from the largest
        groups = pd.Series(values[finite]).groupby(codes[finite])
        enough = groups.count() >= at_least if at_least <= 1 else groups.min() != groups.max()
        per_date = np.zeros(len(uniques), dtype=bool)
        per_date[enough.index.to_numpy()] = enough.to_numpy()
        return (codes >= 0) & per_date[np.maximum(codes, 0)] if len(per_date) else np.zeros(len(codes), dtype=bool)
    c, x = codes[finite], values[finite]
    order = np.lexsort((x, c))
    c, x = c[order], x[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (x[1:] != x[:-1])
    counts = np.bincount(c[new], minlength=len(uniques))
    return (codes >= 0) & (counts[np.maximum(codes, 0)] >= at_least if len(counts) else False)


def _definable_masks(frame: pd.DataFrame, preset: FeaturePreset) -> dict[str, np.ndarray]:
    """``definable``'s column of each cross-sectional feature (the others are True everywhere)."""
    masks: dict[str, np.ndarray] = {}
    distinct: dict[tuple[str, int], np.ndarray] = {}  # several features share a source
    for spec in preset.features:
        kind = KINDS[spec.kind]
        if not kind.cross_sectional:
            continue
        source = frame[spec.source_feature].to_numpy(np.float64)
        key = (spec.source_feature, kind.min_distinct)
        if key not in distinct:
            distinct[key] = _distinct_per_date(frame["date"], source, kind.min_distinct)
        masks[spec.name] = np.isfinite(source) & distinct[key]
    return masks


def definable(frame: pd.DataFrame, preset: FeaturePreset) -> pd.DataFrame:
    """Where each feature of ``frame`` (``compute_features`` rows) can have a value at all.

    A per-symbol feature can on every row. A cross-sectional feature can only where its
    source has a value and that date has at least ``min_distinct`` distinct source values
    among the symbols: with one name (a single stock, an index ETF, a future) a z-score is
    NaN by definition, not missing.
    """
    out = pd.DataFrame(True, index=frame.index, columns=preset.feature_names)
    for name, mask in _definable_masks(frame, preset).items():
        out[name] = mask
    return out


def missing_rates(frame: pd.DataFrame, preset: FeaturePreset, rows: np.ndarray | None = None) -> pd.Series:
    """Share of NaN per feature among the rows where it can have a value (``definable``);
    0 for a feature that can have none in ``frame``. ``rows``: a boolean mask of the rows to
    judge (all when None), so a caller never copies the whole frame to select them."""
    sources = list(dict.fromkeys(s.source_feature for s in preset.features if KINDS[s.kind].cross_sectional))
    judged = frame if rows is None else frame.loc[rows, ["date", *sources]]
    masks = _definable_masks(judged, preset)
    rates = {}
    for name in preset.feature_names:
        missing = frame[name].isna().to_numpy()
        if rows is not None:
            missing = missing[rows]
        can = masks.get(name)
        if can is None:
            rates[name] = int(missing.sum()) / max(len(missing), 1)
        else:
            rates[name] = int((missing & can).sum()) / max(int(can.sum()), 1)
    return pd.Series(rates, index=preset.feature_names, dtype=float)
