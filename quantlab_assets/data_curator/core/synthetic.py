"""Offline, deterministic market data: the default provider, no key and no network.

Every value for (seed, symbol, session) is drawn from a random stream keyed by the seed and
the symbol, indexed by the session's position in the trading calendar since ``ORIGIN``.
Any requested range regenerates the same rows whatever range it is asked in, because the
path is always generated from ``ORIGIN`` and then sliced.

Returns follow a one-factor model with a sector factor: a common market factor whose
volatility drifts through calm and stressed regimes, a sector factor, and idiosyncratic
noise with rare jumps. OHLC are consistent (low <= open, close <= high).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.providers import FetchResult, empty_bars, normalize_bars

ORIGIN = pd.Timestamp("1990-01-02")
# Price levels are pinned at this session (15..300) so decades of random walk from ORIGIN
# do not leave some names at cents and others at millions in the years people study.
PRICE_ANCHOR = pd.Timestamp("2015-01-02")
_MARKET_STREAM = 0x4D4B54  # "MKT"


def _stream(*keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(keys))))


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def market_factor(seed: int, n: int) -> np.ndarray:
    """Daily market log returns for the first ``n`` sessions since ORIGIN."""
    # One stream per component, so element t never depends on how many sessions were drawn.
    shocks = _stream(seed, _MARKET_STREAM, 1).standard_normal(n)
    regime_noise = _stream(seed, _MARKET_STREAM, 2).standard_normal(n)
    # Log-volatility follows a slow AR(1): long calm spells, clustered stress.
    log_vol = np.empty(n)
    level = 0.0
    for t in range(n):  # n ~ 1e4; scalar recursion is cheap next to the per-symbol work
        level = 0.985 * level + 0.12 * regime_noise[t]
        log_vol[t] = level
    vol = 0.0085 * np.exp(log_vol)
    return 0.00022 + vol * shocks


def sector_factor(seed: int, sector: str, n: int) -> np.ndarray:
    return 0.006 * _stream(seed, _key("sector:" + sector), 1).standard_normal(n)


def symbol_path(seed: int, symbol: str, market: np.ndarray, sector: np.ndarray, anchor: int) -> dict[str, np.ndarray]:
    """Bars for one symbol over all sessions since ORIGIN (arrays aligned with ``market``).

    ``anchor`` is the session index where the close is pinned to the symbol's anchor price.
    """
    n = len(market)
    key = _key("symbol:" + symbol)
    rng = _stream(seed, key, 0)
    beta = rng.uniform(0.6, 1.4)
    idio_vol = rng.uniform(0.006, 0.018)
    alpha = rng.normal(0.0, 0.0002)
    anchor_price = float(np.exp(rng.uniform(np.log(15.0), np.log(300.0))))
    base_volume = float(np.exp(rng.uniform(np.log(2e5), np.log(2e7))))

    def component(i: int) -> np.ndarray:
        return _stream(seed, key, i).standard_normal(n)

    eps = component(1)
    jumps = component(2) * 0.06 * (np.abs(component(3)) > 3.09)  # ~1 in 500 sessions
    gap_z = component(4)
    wick_hi = np.abs(component(5))
    wick_lo = np.abs(component(6))
    vol_z = component(7)

    ret = alpha + beta * market + sector + idio_vol * eps + jumps
    log_close = np.cumsum(ret)
    price0 = anchor_price * np.exp(-log_close[anchor])
    close = price0 * np.exp(log_close)
    prev_close = np.concatenate(([price0], close[:-1]))
    day_vol = np.sqrt((beta * 0.01) ** 2 + idio_vol**2)
    # The overnight gap takes a share of the day's return; the rest happens intraday.
    gap = 0.3 * ret + 0.25 * day_vol * gap_z
    open_ = prev_close * np.exp(gap)
    high = np.maximum(open_, close) * np.exp(0.45 * day_vol * wick_hi)
    low = np.minimum(open_, close) * np.exp(-0.45 * day_vol * wick_lo)
    volume = np.round(base_volume * np.exp(0.35 * vol_z + 8.0 * np.abs(ret)))
    rnd = lambda a: np.round(a, 4)  # noqa: E731 - prices quoted to 1/100 of a cent
    return {"open": rnd(open_), "high": rnd(high), "low": rnd(low), "close": rnd(close), "volume": volume}


class SyntheticProvider:
    """Deterministic offline bars; ``sectors`` maps symbol -> sector for the sector factor."""

    name = "synthetic"

    def __init__(self, seed: int = 7, sectors: Mapping[str, str] | None = None):
        self.seed = int(seed)
        self.sectors = dict(sectors or {})

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed})"

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        if lo < ORIGIN:
            raise ValueError(f"synthetic data starts at {ORIGIN.date()}; asked for {lo.date()}")
        stats = {s: {"api_calls": 0, "retries": 0, "latency_s": 0.0} for s in symbols}
        if hi < lo:
            return FetchResult(bars=empty_bars(), stats=stats)
        sessions = trading_days(ORIGIN, max(hi, PRICE_ANCHOR))
        anchor = int(sessions.get_loc(PRICE_ANCHOR))
        keep = (sessions >= lo) & (sessions <= hi)
        if not keep.any():
            return FetchResult(bars=empty_bars(), stats=stats)
        n = len(sessions)
        market = market_factor(self.seed, n)
        sector_cache: dict[str, np.ndarray] = {}
        paths = []
        for symbol in symbols:
            sector = self.sectors.get(symbol, "Unknown")
            if sector not in sector_cache:
                sector_cache[sector] = sector_factor(self.seed, sector, n)
            path = symbol_path(self.seed, symbol, market, sector_cache[sector], anchor)
            paths.append({k: v[keep] for k, v in path.items()})
        if not paths:
            return FetchResult(bars=normalize_bars(empty_bars(), lo, hi), stats=stats)
        # One frame from whole columns (symbol-major, as the per-symbol frames were concatenated).
        days = sessions[keep].to_numpy()
        bars = pd.DataFrame(
            {
                "date": np.tile(days, len(paths)),
                "symbol": np.repeat(np.asarray(list(symbols), dtype=object), len(days)),
                **{k: np.concatenate([p[k] for p in paths]) for k in paths[0]},
            }
        )
        return FetchResult(bars=normalize_bars(bars, lo, hi), stats=stats)
