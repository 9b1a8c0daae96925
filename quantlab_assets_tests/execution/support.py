"""A small real warehouse for the execution tests: ohlcv bars and approved books, written with the
curator's and supervisor's own schemas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.warehouse import replace_slice, replace_strategy_slice
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.portfolio_supervisor.core.schema import APPROVED_TARGETS

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def random_bars(start, end, symbols=SYMBOLS, seed=0, dividends=None, splits=None) -> pd.DataFrame:
    """Random walk bars; ``dividends``/``splits``: {(date, symbol): amount or ratio}."""
    rng = np.random.default_rng(seed)
    days = trading_days(start, end)
    rows = []
    for j, symbol in enumerate(symbols):
        close = 50.0 + 10 * j
        for day in days:
            ratio = (splits or {}).get((str(day.date()), symbol), 1.0)
            close = close / ratio
            open_ = close * np.exp(rng.normal(0, 0.01))
            close = open_ * np.exp(rng.normal(0, 0.015))
            rows.append(
                {
                    "date": day,
                    "symbol": symbol,
                    "open": open_,
                    "high": max(open_, close) * 1.01,
                    "low": min(open_, close) * 0.99,
                    "close": close,
                    "adj_close": close,
                    "volume": float(rng.integers(100_000, 1_000_000)),
                    "dividend": (dividends or {}).get((str(day.date()), symbol), 0.0),
                    "split_coefficient": ratio,
                    "source": "test",
                    "ingested_at": pd.Timestamp("2026-01-01"),
                    "run_id": "test",
                }
            )
    return pd.DataFrame(rows)


def random_books(start, end, strategy, symbols=SYMBOLS, seed=1, gross=1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for day in trading_days(start, end):
        w = rng.random(len(symbols))
        w = gross * w / w.sum()
        for s, x in zip(symbols, w):
            rows.append({"date": day, "strategy": strategy, "symbol": s, "weight": float(x), "source": "targets"})
    return pd.DataFrame(rows)


def seed(con, bars: pd.DataFrame, books: pd.DataFrame, strategy: str) -> None:
    replace_slice(con, OHLCV, bars, bars["date"].min(), bars["date"].max())
    replace_strategy_slice(con, APPROVED_TARGETS, books, strategy, books["date"].min(), books["date"].max())
