"""The supervisor's gate: every rejection carries a reason; approved targets break no rule."""

import dagster as dg

from quantlab_assets.common.warehouse import read_strategy_slice
from quantlab_assets.metadata import gate_check_result
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.portfolio_supervisor.assets import approvals_key, approved_key
from quantlab_assets.portfolio_supervisor.core.gate import approved_targets_within_rules, every_rejection_has_reason
from quantlab_assets.portfolio_supervisor.core.store import APPROVALS, APPROVED_TARGETS
from quantlab_assets.portfolio_supervisor.resources import SupervisorResource
from quantlab_assets.resources import WarehouseResource
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def build_supervisor_checks(spec: StrategySpec):
    name = spec.name

    @dg.multi_asset_check(
        name=f"{name}_supervision_gate",
        specs=[
            dg.AssetCheckSpec(
                "every_rejection_has_reason",
                asset=approvals_key(name),
                blocking=True,
                partitions_def=trading_day_partitions,
                description="no rejected or needs_review day without a written reason",
            ),
            dg.AssetCheckSpec(
                "approved_targets_within_rules",
                asset=approved_key(name),
                blocking=True,
                partitions_def=trading_day_partitions,
                description="every tradable book passes the hard risk limits",
            ),
        ],
        can_subset=True,  # approvals or approved_targets may be materialized alone
    )
    def _gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, supervisor: SupervisorResource):
        start, end = partition_dates(context)
        selected = {c.name for c in context.selected_asset_check_keys}
        limits = supervisor.rules().for_strategy(name)
        with warehouse.get_connection() as con:
            approvals = read_strategy_slice(con, APPROVALS, name, start, end)
            books = read_strategy_slice(con, APPROVED_TARGETS, name, start, end)
        if "every_rejection_has_reason" in selected:
            yield gate_check_result(every_rejection_has_reason(approvals), approvals_key(name))
        if "approved_targets_within_rules" in selected:
            yield gate_check_result(approved_targets_within_rules(books, limits), approved_key(name))

    return _gate
