"""From a provider's answer to warehouse rows: provenance, the ingest log, the symbols mirror.

``ohlcv`` itself has one write path, ``core/step.audit_and_publish_ohlcv`` (stage, audit,
publish); nothing here writes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import (
    append_rows,
    ensure_table,
    replace_table_in_transaction,
    transaction,
)
from quantlab_assets.data_curator.core.providers import FetchResult
from quantlab_assets.data_curator.core.schema import INGEST_LOG, OHLCV, REJECTS, SYMBOLS


def utc_naive(now: datetime) -> pd.Timestamp:
    """``now`` as a naive UTC timestamp, how the warehouse stores its audit times."""
    ts = pd.Timestamp(now)
    return ts if ts.tzinfo is None else ts.tz_convert("UTC").tz_localize(None)


def ohlcv_rows(result: FetchResult, source: str, run_id: str, now: datetime) -> pd.DataFrame:
    """The provider's bars with provenance columns, in the declared column order."""
    rows = result.bars.copy(deep=False)  # the columns added land on the copy; the selection copies the data
    rows["source"] = source
    rows["ingested_at"] = utc_naive(now)
    rows["run_id"] = run_id
    return rows[OHLCV.column_names]


def ingest_log_rows(
    result: FetchResult,
    symbols: Sequence[str],
    start,
    end,
    source: str,
    run_id: str,
    now: datetime,
    refused: dict[str, str] | None = None,
    published_rows: dict[str, int] | None = None,
) -> pd.DataFrame:
    """One row per symbol; a symbol the audit refused is ``failed`` with 0 rows and the reason."""
    failures = {f.symbol: f.reason for f in result.failures}
    failures.update(refused or {})
    if published_rows is not None:
        counts = pd.Series(published_rows, dtype=int)
    else:
        counts = result.bars.groupby("symbol").size() if len(result.bars) else pd.Series(dtype=int)
    logged_at = utc_naive(now)
    records = []
    for symbol in symbols:
        stats = result.stats.get(symbol, {})
        records.append(
            {
                "date": pd.Timestamp(start),
                "end_date": pd.Timestamp(end),
                "run_id": run_id,
                "symbol": symbol,
                "source": source,
                "status": "failed" if symbol in failures or symbol not in result.stats else "ok",
                "rows": 0 if symbol in failures else int(counts.get(symbol, 0)),
                "api_calls": int(stats.get("api_calls", 0)),
                "retries": int(stats.get("retries", 0)),
                "latency_s": float(stats.get("latency_s", 0.0)),
                # A failure's reason; for an accepted series, what the provider did to it (a note).
                "error": failures.get(symbol, result.notes.get(symbol) if symbol in result.stats else "not attempted"),
                "logged_at": logged_at,
            }
        )
    return pd.DataFrame.from_records(records, columns=INGEST_LOG.column_names)


def append_ingest_log(con: duckdb.DuckDBPyConnection, log: pd.DataFrame) -> None:
    append_rows(con, INGEST_LOG, log)


def symbols_frame(registry) -> pd.DataFrame:
    frame = pd.DataFrame(
        [e.model_dump() for e in registry.symbols], columns=["symbol", "name", "sector", "first_date", "last_date"]
    )  # the registry entries' fields; ``universe`` is the registry's
    frame["universe"] = registry.universe
    frame["first_date"] = pd.to_datetime(frame["first_date"])
    frame["last_date"] = pd.to_datetime(frame["last_date"])
    return frame


def write_symbols_in_transaction(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Replace the ``symbols`` table's rows with ``frame`` inside the caller's transaction."""
    replace_table_in_transaction(con, SYMBOLS, frame)


def write_symbols(con: duckdb.DuckDBPyConnection, registry) -> None:
    """Mirror the registry into the ``symbols`` table so SQL can join sectors."""
    frame = symbols_frame(registry)
    with transaction(con):
        write_symbols_in_transaction(con, frame)


def read_ingest_log(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    ensure_table(con, INGEST_LOG)
    return con.execute(f'SELECT * FROM "{INGEST_LOG.name}" WHERE run_id = ? ORDER BY symbol', [run_id]).df()


def prepare_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or verify) the curator's tables: also proves the warehouse is writable."""
    for schema in (OHLCV, INGEST_LOG, REJECTS):
        ensure_table(con, schema)
