"""The data curator's warehouse tables: the ``ohlcv`` contract, the ingest log, the refusals and the
registry mirror ``symbols``."""

from __future__ import annotations

from quantlab_assets.common.warehouse import Column, TableSchema

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")

# What the feature store can represent (issue 24): its kernels take fixed-point logs of prices and
# volumes, and a variance window's int64 sums stay exact while the window's log moves stay within
# about 19 log units (one jump, 252 sessions; see feature_store.core.kernels.centered_sum_squares).
# Prices in [1e-6, 1e9] and volumes up to 1e15 keep every realistic series inside it; a value
# beyond them (a CSV close of 1e308) is refused at ingest naming its row.
MIN_PRICE = 1e-6
MAX_PRICE = 1e9
MAX_VOLUME = 1e15

# What a provider returns: one row per (symbol, session), prices as floats.
PROVIDER_COLUMNS = (
    "date",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "dividend",
    "split_coefficient",
)

OHLCV = TableSchema(
    name="ohlcv",
    description="Daily bars, one row per (symbol, session); unadjusted OHLC plus adjusted close.",
    columns=(
        Column("date", "DATE", False, "session date (exchange local)"),
        Column("symbol", "VARCHAR", False, "ticker from the symbol registry"),
        Column("open", "DOUBLE"),
        Column("high", "DOUBLE"),
        Column("low", "DOUBLE"),
        Column("close", "DOUBLE"),
        Column("adj_close", "DOUBLE", description="split- and dividend-adjusted close"),
        Column("volume", "DOUBLE", description="shares traded"),
        Column("dividend", "DOUBLE", description="cash dividend with ex-date on this session"),
        Column("split_coefficient", "DOUBLE", description="split ratio effective this session (1 = none)"),
        Column("source", "VARCHAR", False, "provider that produced the row"),
        Column("ingested_at", "TIMESTAMP", False, "UTC time the row was written"),
        Column("run_id", "VARCHAR", False, "Dagster run that wrote the row"),
    ),
)

INGEST_LOG = TableSchema(
    name="ohlcv_ingest_log",
    description="One row per (run, symbol): what the curator asked for and what it got.",
    columns=(
        Column("date", "DATE", False, "first session of the requested range"),
        Column("end_date", "DATE", False, "last session of the requested range"),
        Column("run_id", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("source", "VARCHAR", False),
        Column("status", "VARCHAR", False, "ok or failed"),
        Column("rows", "BIGINT", False),
        Column("api_calls", "BIGINT", False),
        Column("retries", "BIGINT", False),
        Column("latency_s", "DOUBLE", False),
        Column("error", "VARCHAR"),
        Column("logged_at", "TIMESTAMP", False),
    ),
)

REJECTS = TableSchema(
    name="ohlcv_rejects",
    description="What an ingest refused, kept for inspection: one row per problem found "
    "(a cell, a row, or the whole series), with the run and the rule.",
    columns=(
        Column("run_id", "VARCHAR", False, "Dagster run that refused it"),
        Column("symbol", "VARCHAR", False),
        Column("date", "DATE", description="session date of the row, when the row has a readable date"),
        Column("source", "VARCHAR", False, "file path or provider reply the value came from"),
        Column("line", "BIGINT", description="line in the source file (header = 1), when it is a file"),
        Column("column", "VARCHAR", description="column (field) holding the value"),
        Column("value", "VARCHAR", description="the value as found in the source"),
        Column("check_name", "VARCHAR", False, "gate check whose rule refused it"),
        Column("reason", "VARCHAR", False),
        Column("rejected_at", "TIMESTAMP", False, "UTC time of the refusal"),
    ),
)

SYMBOLS = TableSchema(
    name="symbols",
    date_column="first_date",
    description="The symbol registry mirrored for SQL joins (sectors, listing dates); rewritten whole.",
    columns=(
        Column("symbol", "VARCHAR", False),
        Column("name", "VARCHAR"),
        Column("sector", "VARCHAR"),
        Column("first_date", "DATE", description="first session of the listing, when the registry gives one"),
        Column("last_date", "DATE", description="last session of the listing, when the registry gives one"),
        Column("universe", "VARCHAR", description="the registry's universe name"),
    ),
)
