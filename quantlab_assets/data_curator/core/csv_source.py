"""Users' own data: a directory of per-symbol CSV files (``<SYMBOL>.csv``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
import time

import pandas as pd

from quantlab_assets.data_curator.core.providers import (
    FetchResult,
    SymbolFailure,
    empty_bars,
    normalize_bars,
)

# Header spellings seen in common exports (Yahoo, Alpha Vantage CSV, Stooq) -> our names.
_ALIASES = {
    "timestamp": "date", "day": "date", "adj_close": "adj_close", "adjclose": "adj_close",
    "adjusted_close": "adj_close", "dividend_amount": "dividend", "dividends": "dividend",
    "split": "split_coefficient", "stock_splits": "split_coefficient",
}
REQUIRED = ("date", "open", "high", "low", "close", "volume")


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    return _ALIASES.get(key, key)


def read_symbol_csv(path: Path, symbol: str) -> pd.DataFrame:
    """One symbol's file as provider columns; a missing column is an error naming the file."""
    frame = pd.read_csv(path)
    frame = frame.rename(columns={c: _canonical(c) for c in frame.columns})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (have {list(frame.columns)})")
    try:
        dates = pd.to_datetime(frame["date"], format="ISO8601")
        # Exports with a UTC offset (yfinance) carry the exchange-local session date.
        frame["date"] = dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: column 'date' has values that are not ISO dates: {exc}") from exc
    if "split_coefficient" in frame.columns:
        # "Stock Splits" exports write 0 for no split; the contract says 1.
        frame["split_coefficient"] = frame["split_coefficient"].replace(0, 1.0)
    frame["symbol"] = symbol
    return frame


class CsvProvider:
    name = "csv"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"CsvProvider(directory={str(self.directory)!r})"

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        if not self.directory.is_dir():
            raise FileNotFoundError(f"CSV data directory {self.directory} does not exist")
        frames, failures, stats = [], [], {}
        for symbol in symbols:
            t0 = time.perf_counter()
            path = self.directory / f"{symbol}.csv"
            try:
                if not path.exists():
                    raise FileNotFoundError(f"{path}: no file for symbol {symbol}")
                frames.append(normalize_bars(read_symbol_csv(path, symbol), start, end))
            except (OSError, ValueError, TypeError, pd.errors.ParserError) as exc:
                failures.append(SymbolFailure(symbol, str(exc)))
            stats[symbol] = {"api_calls": 0, "retries": 0, "latency_s": time.perf_counter() - t0}
        bars = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        return FetchResult(bars=normalize_bars(bars, start, end), failures=failures, stats=stats)
