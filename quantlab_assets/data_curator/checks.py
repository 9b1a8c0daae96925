"""The ohlcv quality gate as Dagster asset checks (blocking: downstream stops on failure)."""

import dagster as dg

from quantlab_assets.data_curator.core.gate import evaluate_stored, with_rejects
from quantlab_assets.data_curator.core.report import quality_report_markdown
from quantlab_assets.data_curator.core.step import read_rejects
from quantlab_assets.data_curator.core.store import read_ingest_log
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import gate_check_events
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import ArtifactsResource, WarehouseResource

_SPECS = [
    (
        "coverage",
        True,
        "Share of (symbol, session) pairs present, holidays excluded; no row on a "
        "non-session date; a re-ingest never has fewer sessions than stored.",
    ),
    ("duplicates", True, "No (symbol, date) stored twice."),
    ("invalid_prices", True, "Prices positive, finite, low <= open, close <= high."),
    ("volume_non_negative", True, "Volume present and >= 0."),
    ("suspicious_jumps", False, "Adjusted-close moves beyond the limit (unadjusted splits, bad prints)."),
]


def _ingesting_run(con, run) -> str:
    for run_id in (run.run_id, run.parent_run_id, run.root_run_id):
        if run_id and len(read_ingest_log(con, run_id)):
            return run_id
    return run.run_id


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset="ohlcv", blocking=blocking, description=desc, partitions_def=trading_day_partitions
        )
        for name, blocking, desc in _SPECS
    ],
)
def ohlcv_quality_gate(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    market_data: MarketDataResource,
    artifacts: ArtifactsResource,
):
    """Evaluates the stored ``ohlcv`` rows of the run's partitions (what was published) and
    what this run refused before publishing (``ohlcv_rejects``), and writes
    ``reports/quality_report.md`` into the run's artifact folder."""
    start, end = partition_dates(context)
    registry = market_data.registry()
    with warehouse.get_connection() as con:
        stored = evaluate_stored(
            con, start, end, registry.tickers, market_data.thresholds(), registry.listing_windows()
        )
        # A re-execution from failure runs only this step: judge the refusals of the run whose
        # ohlcv step wrote this range (this run, else the parent or root run).
        ingest_run = _ingesting_run(con, context.run)
        results = with_rejects(stored, read_rejects(con, ingest_run))
        log = read_ingest_log(con, ingest_run)
    report = quality_report_markdown(start, end, registry.universe, len(registry.tickers), results, log)
    path = artifacts.write_report(context.run.run_id, "quality_report.md", report)
    context.log.info(f"quality report: {path}")
    for result in results:
        yield from gate_check_events(context, result, "ohlcv")
