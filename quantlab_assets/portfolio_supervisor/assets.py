"""The supervisor's asset factory: ``<strategy>/<strategy>_approvals`` and ``<strategy>/<strategy>_approved_targets``.

Feedback without a cycle: Dagster forbids cycles, so the supervisor's flags flow forward in
time. ``approved_targets`` of D depends on ``approvals`` of D and D-1 (a partition offset,
visible in the lineage): names flagged on D-1 are excluded from D's tradable book, and a
rejected day holds the last approved book (a self-dependency on D-1).

Write, audit, publish: the step computes both tables' candidate rows in memory
(``core.step.supervision_partition``), and they replace the stored slices only if the
blocking rules (``checks.py``) pass on exactly those rows; else the stored rows stay as they were
and the refusal is kept in ``audit_rejects``. The checks the UI shows are that audit.
"""

import dagster as dg

from quantlab_assets.backtest_engine.assets import kpis_key
from quantlab_assets.common.publish import Published, audit_and_publish
from quantlab_assets.metadata import column_schema, detail, preview, published_results
from quantlab_assets.partitions import (
    PREVIOUS_AND_SAME_SESSION,
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
)
from quantlab_assets.portfolio_supervisor.checks import supervision_check_specs
from quantlab_assets.portfolio_supervisor.core.report import (
    approval_days,
    approval_summary_markdown,
    book_days,
    last_book,
    supervisor_kpis,
)
from quantlab_assets.portfolio_supervisor.core.schema import APPROVAL_LOG, APPROVALS, APPROVED_TARGETS
from quantlab_assets.portfolio_supervisor.core.step import Supervision, supervision_partition
from quantlab_assets.portfolio_supervisor.core.store import decision_log_rows, latest_overrides, read_inputs
from quantlab_assets.portfolio_supervisor.resources import SupervisorResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import strategy_key, targets_key
from quantlab_assets.strategy_lab.core.spec import StrategySpec

GROUP = "portfolio_supervisor"


def approvals_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "approvals")


def approved_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "approved_targets")


def _approvals_results(context, artifacts: ArtifactsResource, name: str, out: Supervision, outcome: Published):
    start, end = partition_dates(context)
    rows, latest = out.approvals, {}
    if outcome.published:  # the run's report describes published decisions only
        report = approval_summary_markdown(name, start, end, rows)
        artifacts.write_section(context.run.run_id, "approval_summary.md", name, report, title="Approval summary")
        latest = {"run_summary": detail(context, report, "approval_summary.md"), **supervisor_kpis(rows)}
    key = approvals_key(name)
    yield from published_results(
        context,
        outcome,  # its checks: the ones declared on this asset; the reason: the whole audit's
        key,
        {"dagster/row_count": len(rows), "dagster/column_schema": column_schema(APPROVALS)},
        rows["date"],
        per_day=approval_days(rows),  # each partition: its own decision, not the run's last day
        latest=latest,
    )


def _books_results(context, name: str, out: Supervision, outcome: Published):
    books, key = out.approved_targets, approved_key(name)
    yield from published_results(
        context,
        outcome,
        key,
        {
            "dagster/row_count": len(books),
            "dagster/column_schema": column_schema(APPROVED_TARGETS),
            "book": preview(last_book(books), 20) if len(books) else "empty",
        },
        books["date"].unique() if len(books) else [],
        per_day=book_days(books),
    )


def _asset_specs(name: str) -> list[dg.AssetSpec]:
    ap_key, book_key = approvals_key(name), approved_key(name)
    return [
        dg.AssetSpec(
            ap_key,
            group_name=GROUP,
            kinds={"duckdb"},
            skippable=True,
            deps=[dg.AssetDep(targets_key(name), partition_mapping=PREVIOUS_AND_SAME_SESSION), kpis_key(name)],
            description=f"Risk decision on '{name}' per day: approved / rejected / needs_review, "
            "every reason with measured value and limit, risk flags.",
            owners=["team:portfolio_supervisor"],
        ),
        dg.AssetSpec(
            book_key,
            group_name=GROUP,
            kinds={"duckdb"},
            skippable=True,
            deps=[
                dg.AssetDep(ap_key, partition_mapping=PREVIOUS_AND_SAME_SESSION),
                dg.AssetDep(book_key, partition_mapping=PREVIOUS_SESSION),
            ],
            description=f"What may be traded for '{name}': the targets when approved (minus names "
            "flagged the session before), else the last approved book.",
            owners=["team:portfolio_supervisor"],
        ),
    ]


def build_supervisor_assets(spec: StrategySpec) -> dg.AssetsDefinition:
    name = spec.name
    ap_key, book_key = approvals_key(name), approved_key(name)
    made_by = {"targets": targets_key(name).to_user_string(), "backtest_kpis": kpis_key(name).to_user_string()}

    @dg.multi_asset(
        name=f"{name}__supervision",
        specs=_asset_specs(name),
        check_specs=supervision_check_specs(ap_key, book_key),
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Either asset can be selected alone: both are decided day by day in one pass, and
        # only the selected ones are audited and published.
        can_subset=True,
    )
    def _supervision(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        supervisor: SupervisorResource,
        artifacts: ArtifactsResource,
    ):
        start, end = partition_dates(context)
        keys = {ap_key: APPROVALS, book_key: APPROVED_TARGETS}
        tables = [table for key, table in keys.items() if key in context.selected_asset_keys]
        limits = supervisor.rules().for_strategy(name)
        with warehouse.get_connection() as con:
            inputs, overrides = read_inputs(con, name, start, end), latest_overrides(con, name, start, end)
            out = supervision_partition(inputs, spec, limits, overrides, start, end, made_by)
            # Write, audit, publish: the selected tables' candidate rows replace the stored
            # slices in one transaction only if no blocking rule failed on them; the decision
            # log is appended in the same transaction (it holds published decisions only).
            log = [(APPROVAL_LOG, decision_log_rows(out.approvals, context.run.run_id))] if APPROVALS in tables else []
            outcome = audit_and_publish(
                con,
                out.slices(tables, name),
                out.audit(tables),
                start,
                end,
                contract=f"approvals/{name}",
                run_id=context.run.run_id,
                appends=log,
            )
        if APPROVALS in tables:
            yield from _approvals_results(context, artifacts, name, out, outcome)
        if APPROVED_TARGETS in tables:
            yield from _books_results(context, name, out, outcome)

    return _supervision
