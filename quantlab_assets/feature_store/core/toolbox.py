"""The standard single-asset toolbox as feature kinds with typed parameters (no expressions).

Every kind reads the adjusted prices of one name (``panel.BlockInputs.price``) and is a pure function of
the last ``window`` sessions up to and including D, computed with the fixed-order kernels of
``kernels`` (window sums in a fixed order, exact rolling extremes), so a date computed alone
equals the batch bit for bit and bars after D never change it. A window holding a missing bar
gives NaN, and so does an undefined value (a flat channel: 0/0).

Definitions (C, H, L the adjusted close, high and low; TA-Lib's and ``ta``'s conventions):

- ``ma_cross``: fast and slow moving averages of C (``average``: ``sma`` the arithmetic mean
  of the last n closes, ``ema`` the truncated EMA of span n, weights normalised, dropped weight
  below ``kernels.EMA_TOL``). ``diff`` = MA_fast - MA_slow (price units), ``ratio`` =
  MA_fast / MA_slow - 1, ``cross`` = +1 on the session the fast average crosses above the slow
  one (fast < slow the session before, fast > slow on D; backtesting.py's ``crossover``), -1 on
  a cross below, 0 otherwise.
- ``donchian``: the channel of the last n highs and lows, D included (``ta.DonchianChannel``):
  ``pband`` = (C - LL) / (HH - LL), ``width`` = (HH - LL) / ((HH + LL) / 2); ``breakout`` = +1
  when C is above the highest high of the n sessions before D, -1 below their lowest low, else 0.
- ``roc``: TA-Lib ROC, 100 (C_t / C_{t-n} - 1).
- ``zscore``: (C_t - mean) / std of the last n closes (population std, as Bollinger's).
- ``stochastic``: %K = 100 (C - LL_n) / (HH_n - LL_n); %D its SMA over ``smooth`` sessions.
- ``williams_r``: -100 (HH_n - C) / (HH_n - LL_n).
- ``cci``: (TP - SMA_n(TP)) / (0.015 MAD_n(TP)), TP = (H + L + C) / 3, MAD the mean absolute
  deviation from the window's mean.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from quantlab_assets.common.yaml_io import StrictFrozenModel
from quantlab_assets.feature_store.core import kernels as nb

MAX_WINDOW = 504  # kinds.MAX_WINDOW (not imported: kinds imports this module)
Window = Annotated[int, Field(ge=1, le=MAX_WINDOW)]
SpreadWindow = Annotated[int, Field(ge=2, le=252)]
Span = Annotated[int, Field(ge=1, le=100)]


class ToolParams(StrictFrozenModel):
    """A tool's parameters: strict types (a quoted or fractional window is an error)."""


class MaCrossParams(ToolParams):
    fast: Window
    slow: Window
    average: Literal["sma", "ema"] = "sma"
    output: Literal["diff", "ratio", "cross"]

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        if self.average == "ema" and self.slow > 100:
            raise ValueError(f"slow ({self.slow}): an ema span is at most 100")
        return self


class DonchianParams(ToolParams):
    window: SpreadWindow = 20
    output: Literal["pband", "width", "breakout"]


class RocParams(ToolParams):
    window: Window


class ZscoreParams(ToolParams):
    window: SpreadWindow


class StochasticParams(ToolParams):
    window: SpreadWindow = 14
    smooth: Annotated[int, Field(ge=1, le=20)] = 3
    output: Literal["k", "d"] = "k"


class RangeParams(ToolParams):
    window: SpreadWindow = 14


class CciParams(ToolParams):
    window: SpreadWindow = 20
    constant: float = Field(0.015, gt=0)


# --------------------------------------------------------------------------- windows


def _ema_lags(span: int) -> int:
    return len(nb.ema_weights(span))


def _ma_lags(average: str, n: int) -> int:
    return _ema_lags(n) if average == "ema" else n


def ma_cross_window(p: MaCrossParams) -> int:
    lags = max(_ma_lags(p.average, p.fast), _ma_lags(p.average, p.slow))
    return lags + 1 if p.output == "cross" else lags


def stochastic_window(p: StochasticParams) -> int:
    return p.window + (p.smooth - 1 if p.output == "d" else 0)


# --------------------------------------------------------------------------- kernels


def rolling_max_float(x: np.ndarray, window: int) -> np.ndarray:
    """Highest of the last ``window`` rows (exact; NaN where incomplete or holding a NaN)."""
    return nb.rolling_extreme_float(x, window, np.maximum)


def rolling_min_float(x: np.ndarray, window: int) -> np.ndarray:
    """Lowest of the last ``window`` rows (exact; NaN where incomplete or holding a NaN)."""
    return nb.rolling_extreme_float(x, window, np.minimum)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / den, np.nan)


def _moving_average(close: np.ndarray, average: str, n: int) -> np.ndarray:
    return nb.truncated_ema(close, n) if average == "ema" else nb.rolling_mean_float(close, n)


def _sign_event(today_up: np.ndarray, today_down: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.where(ok, np.where(today_up, 1.0, np.where(today_down, -1.0, 0.0)), np.nan)


# --------------------------------------------------------------------------- kinds


def ma_cross(inp: Any, p: MaCrossParams) -> np.ndarray:
    close = inp.price("close")
    fast, slow = _moving_average(close, p.average, p.fast), _moving_average(close, p.average, p.slow)
    if p.output == "diff":
        return fast - slow
    if p.output == "ratio":
        return _ratio(fast, slow) - 1.0
    fast_1, slow_1 = _lag(fast, 1), _lag(slow, 1)
    ok = ~np.isnan(fast) & ~np.isnan(slow) & ~np.isnan(fast_1) & ~np.isnan(slow_1)
    return _sign_event((fast_1 < slow_1) & (fast > slow), (fast_1 > slow_1) & (fast < slow), ok)


def donchian(inp: Any, p: DonchianParams) -> np.ndarray:
    close, high, low = inp.price("close"), inp.price("high"), inp.price("low")
    if p.output == "breakout":
        hh, ll = _lag(rolling_max_float(high, p.window), 1), _lag(rolling_min_float(low, p.window), 1)
        ok = ~np.isnan(close) & ~np.isnan(hh) & ~np.isnan(ll)
        return _sign_event(close > hh, close < ll, ok)
    hh, ll = rolling_max_float(high, p.window), rolling_min_float(low, p.window)
    if p.output == "width":
        return _ratio(hh - ll, (hh + ll) / 2.0)
    return _ratio(close - ll, hh - ll)


def roc(inp: Any, p: RocParams) -> np.ndarray:
    close = inp.price("close")
    return 100.0 * (_ratio(close, _lag(close, p.window)) - 1.0)


def zscore(inp: Any, p: ZscoreParams) -> np.ndarray:
    close = inp.price("close")
    mean = nb.rolling_mean_float(close, p.window)
    return _ratio(close - mean, nb.rolling_pop_std_float(close, mean, p.window))


def _percent_k(inp: Any, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    close = inp.price("close")
    hh, ll = rolling_max_float(inp.price("high"), window), rolling_min_float(inp.price("low"), window)
    return close, hh, ll


def stochastic(inp: Any, p: StochasticParams) -> np.ndarray:
    close, hh, ll = _percent_k(inp, p.window)
    k = 100.0 * _ratio(close - ll, hh - ll)
    return k if p.output == "k" else nb.rolling_mean_float(k, p.smooth)


def williams_r(inp: Any, p: RangeParams) -> np.ndarray:
    close, hh, ll = _percent_k(inp, p.window)
    return -100.0 * _ratio(hh - close, hh - ll)


def cci(inp: Any, p: CciParams) -> np.ndarray:
    tp = (inp.price("high") + inp.price("low") + inp.price("close")) / 3.0
    mean = nb.rolling_mean_float(tp, p.window)
    mad = np.full_like(tp, np.nan)
    n = p.window
    if len(tp) >= n:
        acc = np.zeros((len(tp) - n + 1,) + tp.shape[1:])
        centre = mean[n - 1 :]
        for k in range(n):  # lag by lag, a fixed order
            acc += np.abs(tp[n - 1 - k : len(tp) - k] - centre)
        mad[n - 1 :] = acc / n
    return _ratio(tp - mean, p.constant * mad)
