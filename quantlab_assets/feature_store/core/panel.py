"""The bars as arrays: ``Panel`` (long ohlcv rows pivoted to sessions x symbols) and
``BlockInputs``, the quantised series of a block of symbols that every feature kind reads.

The session axis is the NYSE calendar between the first and last bar (plus any date that
carries bars): a session without a bar is a missing bar. Prices are adjusted
(``adj_open/high/low = open/high/low * adj_close / close``) and quantised to the fixed-point
logs of ``kernels``, each derived once per block and shared by the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.bars import adjusted, adjusted_volume
from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core.kernels import SCALE

OHLCV_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "adj_close", "volume")
BAR_FIELDS = ("open", "high", "low", "close", "adj_close", "volume")


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


class BlockInputs:
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
