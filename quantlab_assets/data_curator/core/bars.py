"""The ``ohlcv`` contract's reader and its one price-adjustment rule (the data curator owns both).

Every consumer (features, labels, the backtest, sweeps, the gates) reads bars here and adjusts
prices with :func:`adjusted`, so "which open does a fill use" has one answer.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.common.warehouse import read_slice
from quantlab_assets.data_curator.core.schema import OHLCV, SYMBOLS

BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "adj_close", "volume"]


def adjusted(price, adj_close, close):
    """``price * adj_close / close``: an open, high or low on the adjusted close's scale, so
    splits and dividends do not show as returns. NaN/inf where ``close`` is 0 or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return price * adj_close / close


def adjusted_volume(volume, adj_close, close):
    """``volume * close / adj_close``: shares on the adjusted prices' scale, so a 2:1 split in a
    back-adjusted vendor file (the close halves, the volume doubles) is no jump in volume either,
    and adjusted price x adjusted volume is what traded (``close * volume``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return volume * close / adj_close


def adjusted_open(bars: pd.DataFrame) -> np.ndarray:
    """The adjusted open of each row of ``bars`` (fills and labels trade at it)."""
    return np.asarray(adjusted(bars["open"], bars["adj_close"], bars["close"]), dtype=np.float64)


def read_bars(con: duckdb.DuckDBPyConnection, start, end, symbols=None) -> pd.DataFrame:
    """Stored bars dated in [start, end] (of ``symbols`` when given), ordered by (symbol, date)."""
    return read_slice(con, OHLCV, start, end, columns=BAR_COLUMNS, symbols=symbols)


def most_sessions_stored(con: duckdb.DuckDBPyConnection, symbols, end) -> int:
    """The most stored ohlcv sessions any of ``symbols`` has up to ``end``: the longest history a
    feature's window can read there (0: none stored)."""
    try:
        row = con.execute(
            f'SELECT max(n) FROM (SELECT count(*) AS n FROM "{OHLCV.name}" WHERE list_contains(?, symbol) '
            "AND date <= ? GROUP BY symbol)",
            [sorted({str(s) for s in symbols}), pd.Timestamp(end).date()],
        ).fetchone()
    except duckdb.CatalogException:  # nothing ingested yet
        return 0
    return int(row[0]) if row and row[0] is not None else 0


def read_listings(con: duckdb.DuckDBPyConnection, symbols) -> pd.DataFrame:
    """symbol, first_date (the registry's listing date, NaT when not given or no registry
    table) and first_bar (the first stored ohlcv bar) of ``symbols``."""
    names = sorted({str(s) for s in symbols})
    first_bar = con.execute(
        f'SELECT symbol, min(date) AS first_bar FROM "{OHLCV.name}" WHERE list_contains(?, symbol) GROUP BY symbol',
        [names],
    ).df()
    try:
        first_date = con.execute(
            f'SELECT symbol, first_date FROM "{SYMBOLS.name}" WHERE list_contains(?, symbol)', [names]
        ).df()
    except duckdb.CatalogException:  # no registry mirror yet: listing dates unknown
        first_date = pd.DataFrame({"symbol": pd.Series(dtype=object), "first_date": pd.Series(dtype="datetime64[ns]")})
    out = (
        pd.DataFrame({"symbol": pd.Series(names, dtype=object)})
        .merge(first_date, on="symbol", how="left")
        .merge(first_bar, on="symbol", how="left")
    )
    for col in ("first_date", "first_bar"):
        out[col] = pd.to_datetime(out[col])
    return out
