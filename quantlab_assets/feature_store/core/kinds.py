"""The feature kinds: the fixed registry ``KINDS`` of typed parameters, windows and computations.

Each kind declares its parameters (a pydantic model), its window in sessions up to and
including D, and its computation from the kernels over a ``BlockInputs``. There is no
expression language: a new formula is a new kind, written and tested here (the single-asset
toolbox's kinds are in ``toolbox``). ``KINDS_VERSION`` is bumped whenever a kind's computation
changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from quantlab_assets.common.calendar import SESSIONS_PER_YEAR
from quantlab_assets.common.yaml_io import FrozenModel, StrictFrozenModel
from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core import toolbox as tb
from quantlab_assets.feature_store.core.kernels import SCALE
from quantlab_assets.feature_store.core.panel import BlockInputs

KINDS_VERSION = "3"
"""Bumped whenever a kind's computation changes: part of the features' code version with the
preset's content (2: rsi, atr_pct, sma_ratio and bollinger_pctb became the standard indicators;
3: volume features read volume in adjusted shares)."""
MAX_WINDOW = 504
# Variance-type windows: their int64 sums of squares stay exact for any realistic dispersion
# up to here (see kernels.centered_sum_squares).
MAX_SPREAD_WINDOW = 252
MAX_EMA_SPAN = 100

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


def _return(inp: BlockInputs, p: ReturnParams) -> np.ndarray:
    q, valid = inp.close
    change, _ = nb.diff(q, valid, p.horizon)
    logret = change / SCALE
    return nb.set_nan(logret if p.log else np.expm1(logret), nb.window_valid(valid, p.horizon + 1))


def _momentum(inp: BlockInputs, p: MomentumParams) -> np.ndarray:
    q, valid = inp.close
    recent, _ = nb.lag(q, valid, p.skip)
    old, _ = nb.lag(q, valid, p.lookback)
    return nb.set_nan(np.expm1((recent - old) / SCALE), nb.window_valid(valid, p.lookback + 1))


def _sma_ratio(inp: BlockInputs, p: WindowParams) -> np.ndarray:
    close = inp.price("close")
    return close / nb.rolling_mean_float(close, p.window) - 1.0


def _sma_log_ratio(inp: BlockInputs, p: WindowParams) -> np.ndarray:
    q, valid = inp.close
    sums, ok = nb.rolling_sum_exact(q, valid, p.window)
    return nb.set_nan((p.window * q - sums) / (p.window * SCALE), ok)


def _ema_ratio(inp: BlockInputs, p: EmaParams) -> np.ndarray:
    q, _ = inp.close  # an invalid close is NaN inside the EMA, so no mask is needed
    return np.expm1((q - inp.ema_close(p.span)) / SCALE)


def _macd(inp: BlockInputs, p: MacdParams) -> np.ndarray:
    line, signal = inp.macd(p.fast, p.slow, p.signal)
    return {"macd": line, "signal": signal, "hist": line - signal}[p.output]


def _volatility(inp: BlockInputs, p: VolatilityParams) -> np.ndarray:
    return nb.rolling_std(*inp.ret, p.window, ddof=1) * math.sqrt(p.periods_per_year)


def _previous_close(inp: BlockInputs) -> np.ndarray:
    close = inp.price("close")
    prev = np.full_like(close, np.nan)
    prev[1:] = close[:-1]
    return prev


def _rsi(inp: BlockInputs, p: WilderParams) -> np.ndarray:
    return nb.wilder_rsi(inp.price("close") - _previous_close(inp), p.window)


def _rsi_cutler(inp: BlockInputs, p: WindowParams) -> np.ndarray:
    return nb.rsi(*inp.ret, p.window)


def _bollinger_pctb(inp: BlockInputs, p: BollingerParams) -> np.ndarray:
    close = inp.price("close")
    mean = nb.rolling_mean_float(close, p.window)
    std = nb.rolling_pop_std_float(close, mean, p.window)
    with np.errstate(divide="ignore", invalid="ignore"):
        # (C - (m - k s)) / (2 k s), the position of the close inside the bands.
        return nb.set_nan((close - (mean - p.num_std * std)) / (2.0 * p.num_std * std), std != 0)


def _atr_pct(inp: BlockInputs, p: WilderParams) -> np.ndarray:
    prev = _previous_close(inp)
    true_range = np.fmax(inp.price("high"), prev) - np.fmin(inp.price("low"), prev)
    true_range[np.isnan(prev)] = np.nan  # fmax/fmin would drop a missing previous close
    return nb.geometric_window_sum(true_range, nb.wilder_weights(p.window)) / inp.price("close")


def _volume_z(inp: BlockInputs, p: SpreadParams) -> np.ndarray:
    q, valid = inp.volume
    w = p.window
    m, sums, ok = nb.centered_sum_squares(q, valid, w)
    ok &= m != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # (x - mean) / std with std = sqrt(M / (w (w - 1))), from exact integers.
        return nb.set_nan((w * q - sums) / np.sqrt(m * (w / (w - 1))), ok)


def _log_dollar_volume(inp: BlockInputs, p: WindowParams) -> np.ndarray:
    return nb.rolling_mean(*inp.dollar_volume, p.window)


def _dist_high(inp: BlockInputs, p: WindowParams) -> np.ndarray:
    q, valid = inp.close
    return np.expm1(q / SCALE - nb.rolling_max(q, valid, p.window))


def _dist_low(inp: BlockInputs, p: WindowParams) -> np.ndarray:
    q, valid = inp.close
    return np.expm1(q / SCALE - nb.rolling_min(q, valid, p.window))


def _beta(inp: BlockInputs, p: SpreadParams) -> np.ndarray:
    r, vr = inp.ret
    m, vm = inp.market
    return nb.rolling_beta(r, m, vr & vm, p.window)


def _corr(inp: BlockInputs, p: SpreadParams) -> np.ndarray:
    r, vr = inp.ret
    m, vm = inp.market
    return nb.rolling_corr(r, m, vr & vm, p.window)


def _candle(inp: BlockInputs, p: CandleParams) -> np.ndarray:
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


def _gap(inp: BlockInputs, p: NoParams) -> np.ndarray:
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
