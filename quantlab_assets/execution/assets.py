"""The execution team's asset factory: ``<strategy>/<strategy>_paper_book``, paper trading from the
approved targets (``core.step.execution_partition``).

The step trades each session of its partition in order (the broker is a resource setting), then
the ``paper_book`` rows (the account beside the reference backtest, the drift and the counts) are
audited and published through write-audit-publish. The orders, the fills and the breaks are
append-only logs of what happened at the broker: they are kept whatever the audit says.
"""

import dagster as dg

from quantlab_assets.common.publish import Slice, audit_and_publish
from quantlab_assets.data_curator.assets import ohlcv as ohlcv_asset
from quantlab_assets.execution.checks import execution_check_specs
from quantlab_assets.execution.core.cycle import Cycle
from quantlab_assets.execution.core.report import per_day, summary_markdown
from quantlab_assets.execution.core.schema import PAPER_BOOK
from quantlab_assets.execution.core.step import execution_partition
from quantlab_assets.execution.resources import ExecutionResource
from quantlab_assets.metadata import column_schema, detail, preview, published_results
from quantlab_assets.partitions import PREVIOUS_SESSION, partition_dates, trading_day_partitions
from quantlab_assets.portfolio_supervisor.assets import approved_key
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import strategy_key
from quantlab_assets.strategy_lab.core.spec import StrategySpec

GROUP = "execution"


def paper_book_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "paper_book")


def build_execution_asset(spec: StrategySpec) -> dg.AssetsDefinition:
    name = spec.name
    key = paper_book_key(name)
    made_by = {"approved_targets": approved_key(name).to_user_string(), "ohlcv": "ohlcv"}

    @dg.asset(
        key=key,
        group_name=GROUP,
        kinds={"duckdb"},
        deps=[approved_key(name), ohlcv_asset.key, dg.AssetDep(key, partition_mapping=PREVIOUS_SESSION)],
        check_specs=execution_check_specs(key),
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        owners=["team:execution"],
        description=f"Paper trading of '{name}': orders from the approved targets at each close, fills at the "
        "next open, the ledger reconciled with the broker; equity beside the reference backtest.",
    )
    def _paper_book(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        execution: ExecutionResource,
        artifacts: ArtifactsResource,
    ):
        start, end = partition_dates(context)
        cycle = Cycle(name, execution.policy(), execution.limits(), context.run.run_id)
        with warehouse.get_connection() as con:
            out = execution_partition(con, execution.make_broker(con, name), cycle, start, end, made_by)
            slices = [Slice(PAPER_BOOK, out.paper_book, strategy=name)]
            outcome = audit_and_publish(
                con, slices, out.audit(), start, end, contract=f"paper_book/{name}", run_id=context.run.run_id
            )
        book = out.paper_book
        refusals = [r for c in out.cycles for r in c.refused]
        report = summary_markdown(name, start, end, book, refusals, execution.broker)
        artifacts.write_section(context.run.run_id, "execution_summary.md", name, report, title="Execution summary")
        latest = {"run_summary": detail(context, report, "execution_summary.md")} if outcome.published else {}
        yield from published_results(
            context,
            outcome,
            key,
            {
                "dagster/row_count": len(book),
                "dagster/column_schema": column_schema(PAPER_BOOK),
                "book": preview(book[["date", "equity", "reference_equity", "drift", "orders", "fills"]], 10),
            },
            book["date"],
            per_day=per_day(book),
            latest=latest,
        )

    return _paper_book
