"""The data curator's assets: the symbol registry (external) and the gated ``ohlcv`` table."""


import time
from datetime import datetime, timezone

import dagster as dg

from quantlab_assets.data_curator.core.ingest import (
    append_ingest_log,
    ingest_log_rows,
    ohlcv_rows,
    write_ohlcv,
    write_symbols,
)
from quantlab_assets.data_curator.core.quality import check_ingest_success
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import column_schema, gate_check_result, preview
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import WarehouseResource

GROUP = "data_curator"

symbols = dg.AssetSpec(
    "symbols",
    group_name=GROUP,
    kinds={"yaml"},
    description="The symbol registry: a validated YAML file naming the universe "
                "(QUANTLAB_SYMBOLS, default the packaged 50-name demo universe).",
)


@dg.asset(
    name="ohlcv",
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=[symbols],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec(
        "ingest_success_rate", asset="ohlcv", blocking=True, partitions_def=trading_day_partitions,
        description="Share of the universe's symbols the provider delivered.")],
    owners=["team:data_curator"],
)
def ohlcv(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
          market_data: MarketDataResource):
    """Daily OHLCV bars for the universe: fetched, stamped with provenance and written
    atomically per partition range (a re-run replaces, never duplicates)."""
    start, end = partition_dates(context)
    registry = market_data.registry()
    provider = market_data.build_provider(registry)
    t0 = time.perf_counter()
    result = provider.fetch(registry.tickers, start, end)
    fetch_s = time.perf_counter() - t0
    if not result.fetched_symbols and registry.tickers:
        first = result.failures[0].reason if result.failures else "no data returned"
        raise dg.Failure(
            description=f"{provider.name}: none of {len(registry.tickers)} symbols could be fetched "
                        f"for {start}..{end}. First reason: {first}",
        )
    now = datetime.now(timezone.utc)
    rows = ohlcv_rows(result, provider.name, context.run.run_id, now)
    t1 = time.perf_counter()
    with warehouse.get_connection() as con:
        written = write_ohlcv(con, rows, start, end, result.fetched_symbols)
        write_symbols(con, registry)
        append_ingest_log(con, ingest_log_rows(result, registry.tickers, start, end,
                                               provider.name, context.run.run_id, now))
    write_s = time.perf_counter() - t1
    totals = {k: sum(s.get(k, 0) for s in result.stats.values()) for k in ("api_calls", "retries")}
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": written,
        "dagster/column_schema": column_schema(OHLCV),
        "provider": provider.name,
        "range": f"{start}..{end}",
        "symbols_fetched": len(result.fetched_symbols),
        "symbols_failed": len(result.failures),
        "api_calls": int(totals["api_calls"]),
        "retries": int(totals["retries"]),
        "ingest_latency_s": round(fetch_s, 3),
        "upsert_s": round(write_s, 3),
        "upsert_rows_per_s": round(written / write_s, 1) if write_s > 0 else 0.0,
        "preview": preview(rows.drop(columns=["run_id", "ingested_at"]).head(10)),
    })
    gate = check_ingest_success(result, registry.tickers, market_data.min_success_rate)
    yield gate_check_result(gate, "ohlcv")
