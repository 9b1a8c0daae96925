"""The data curator's assets: the symbol registry (external) and the gated ``ohlcv`` table."""

import time
from contextlib import contextmanager
from datetime import datetime, timezone

import dagster as dg

from quantlab_assets.common.warehouse import WarehouseError
from quantlab_assets.data_curator.core.ingest import ohlcv_rows, prepare_tables
from quantlab_assets.data_curator.core.publish import audit_and_publish
from quantlab_assets.data_curator.core.quality import check_ingest_success
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import add_partition_metadata, column_schema, gate_check_result, preview
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


@contextmanager
def _take(warehouse: WarehouseResource, context):
    """A warehouse connection; a wrong path or a lock held too long fails the step plainly."""
    try:
        with warehouse.get_connection(on_wait=context.log.warning) as con:
            yield con
    except WarehouseError as exc:
        raise dg.Failure(description=str(exc)) from None


@dg.asset(
    name="ohlcv",
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=[symbols],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "ingest_success_rate",
            asset="ohlcv",
            blocking=True,
            partitions_def=trading_day_partitions,
            description="Share of the universe's symbols whose new data was fetched, passed the "
            "audit and was published.",
        )
    ],
    owners=["team:data_curator"],
)
def ohlcv(context: dg.AssetExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource):
    """Daily OHLCV bars for the universe: fetched, then written, audited and published per
    symbol in one transaction (write-audit-publish): a symbol whose new rows break a
    blocking rule keeps its stored rows, and its refused values go to ``ohlcv_rejects``."""
    start, end = partition_dates(context)
    registry = market_data.registry()
    provider = market_data.build_provider(registry)
    # Take the warehouse before spending API calls (a wrong path or a held lock fails here),
    # and hold no connection while the network is in use.
    with _take(warehouse, context) as con:
        prepare_tables(con)
    t0 = time.perf_counter()
    result = provider.fetch(registry.tickers, start, end)
    fetch_s = time.perf_counter() - t0
    now = datetime.now(timezone.utc)
    rows = ohlcv_rows(result, provider.name, context.run.run_id, now)
    t1 = time.perf_counter()
    with _take(warehouse, context) as con:  # waits again (bounded) if someone took it meanwhile
        outcome = audit_and_publish(
            con, rows, result, registry.tickers, start, end, provider.name, context.run.run_id, now, registry
        )
    write_s = time.perf_counter() - t1
    gate = check_ingest_success(result, registry.tickers, market_data.min_success_rate, outcome.refused)
    if not outcome.published and registry.tickers:
        # The ingest log and the rejects are committed; nothing was published.
        first = next(iter(outcome.refused.values()), "")
        raise dg.Failure(
            description=f"{provider.name}: nothing published for {start}..{end}, the "
            f"stored rows are kept. {gate.description}. {first}".rstrip(". ")
        )
    written = outcome.rows_written
    # Each partition shows its own rows (a holiday inside a range: "no session: 0 rows").
    add_partition_metadata(context, rows.loc[rows["symbol"].isin(list(outcome.published)), "date"])
    totals = {k: sum(s.get(k, 0) for s in result.stats.values()) for k in ("api_calls", "retries")}
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "dagster/column_schema": column_schema(OHLCV),
            "provider": provider.name,
            "range": f"{start}..{end}",
            "symbols_published": len(outcome.published),
            "symbols_fetched": len(result.fetched_symbols),
            "symbols_failed": len(result.failures) + len(outcome.refused),
            "symbols_refused": len(outcome.refused),
            "api_calls": int(totals["api_calls"]),
            "retries": int(totals["retries"]),
            "ingest_latency_s": round(fetch_s, 3),
            "upsert_s": round(write_s, 3),
            "upsert_rows_per_s": round(written / write_s, 1) if write_s > 0 else 0.0,
            "preview": preview(
                rows[rows["symbol"].isin(outcome.published)].drop(columns=["run_id", "ingested_at"]).head(10)
            ),
        }
    )
    yield gate_check_result(gate, "ohlcv")
