"""The data curator's assets: the symbol registry (external) and the gated ``ohlcv`` table."""

from contextlib import contextmanager

import dagster as dg

from quantlab_assets.common.warehouse import WarehouseError
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.data_curator.core.step import Ingest, ingest_partition
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import add_partition_metadata, column_schema, gate_check_events, preview
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
    """A warehouse connection; a wrong path or a lock held too long fails the step plainly. The
    ingest is the one step that may create the warehouse."""
    try:
        with warehouse.get_connection(on_wait=context.log.warning, create=True) as con:
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
    ingest = ingest_partition(
        market_data.build_provider(registry),
        registry,
        start,
        end,
        context.run.run_id,
        lambda: _take(warehouse, context),
        market_data.min_success_rate,
    )
    for warning in ingest.warnings:  # the registry shrank, bars outside a listing window
        context.log.warning(warning)
    failure = ingest.nothing_published(registry.tickers, start, end)
    if failure:
        raise dg.Failure(description=failure)
    # Each partition shows its own rows (a holiday inside a range: "no session: 0 rows").
    add_partition_metadata(context, ingest.published_rows["date"])
    yield dg.MaterializeResult(metadata=_ohlcv_metadata(ingest, start, end))
    yield from gate_check_events(context, ingest.gate, "ohlcv")


def _ohlcv_metadata(ingest: Ingest, start, end) -> dict:
    result, outcome = ingest.result, ingest.outcome
    written = outcome.rows_written
    totals = {k: sum(s.get(k, 0) for s in result.stats.values()) for k in ("api_calls", "retries")}
    return {
        "dagster/row_count": written,
        "dagster/column_schema": column_schema(OHLCV),
        "provider": ingest.source,
        "range": f"{start}..{end}",
        "symbols_published": len(outcome.published),
        "symbols_fetched": len(result.fetched_symbols),
        "symbols_failed": len(result.failures) + len(outcome.refused),
        "symbols_refused": len(outcome.refused),
        "api_calls": int(totals["api_calls"]),
        "retries": int(totals["retries"]),
        "ingest_latency_s": round(ingest.fetch_s, 3),
        "upsert_s": round(ingest.write_s, 3),
        "upsert_rows_per_s": round(written / ingest.write_s, 1) if ingest.write_s > 0 else 0.0,
        "registry_names_dropped": len(ingest.dropped),
        "rows_outside_listing": sum(ingest.outcome.outside_listing.values()),
        "warnings": "\n".join(ingest.warnings) or "none",
        "preview": preview(ingest.published_rows.head(10).drop(columns=["run_id", "ingested_at"])),
    }
