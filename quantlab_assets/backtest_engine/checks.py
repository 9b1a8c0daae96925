"""The backtest's gate: accounting identity every day, no trade before its decision, finite KPIs."""

import dagster as dg

from quantlab_assets.backtest_engine.assets import FIRST_SESSION, backtest_key, kpis_key
from quantlab_assets.backtest_engine.core.gate import accounting_identity, kpis_finite, no_trade_before_decision
from quantlab_assets.backtest_engine.core.store import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_TRADES,
)
from quantlab_assets.common.warehouse import read_strategy_slice
from quantlab_assets.metadata import gate_check_result
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import WarehouseResource
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def build_backtest_checks(spec: StrategySpec):
    name = spec.name

    @dg.multi_asset_check(
        name=f"{name}_backtest_gate",
        specs=[
            dg.AssetCheckSpec(
                "accounting_identity",
                asset=backtest_key(name),
                blocking=True,
                partitions_def=trading_day_partitions,
                description="equity = cash + Σ shares × price at every close",
            ),
            dg.AssetCheckSpec(
                "no_trade_before_decision",
                asset=backtest_key(name),
                blocking=True,
                partitions_def=trading_day_partitions,
                description="every fill is dated after the close that decided it",
            ),
            dg.AssetCheckSpec(
                "kpis_finite",
                asset=kpis_key(name),
                blocking=True,
                partitions_def=trading_day_partitions,
                description="level KPIs are finite once there are two sessions",
            ),
        ],
        can_subset=True,  # the backtest or its KPIs may be materialized alone
    )
    def _gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        start, end = partition_dates(context)
        selected = {c.name for c in context.selected_asset_check_keys}
        with warehouse.get_connection() as con:
            equity = read_strategy_slice(con, BACKTEST_EQUITY, name, start, end)
            positions = read_strategy_slice(con, BACKTEST_POSITIONS, name, start, end)
            trades = read_strategy_slice(con, BACKTEST_TRADES, name, FIRST_SESSION, end)
            kpis = read_strategy_slice(con, BACKTEST_KPIS, name, start, end)
        if "accounting_identity" in selected:
            yield gate_check_result(accounting_identity(equity, positions), backtest_key(name))
        if "no_trade_before_decision" in selected:
            yield gate_check_result(no_trade_before_decision(trades), backtest_key(name))
        if "kpis_finite" in selected:
            yield gate_check_result(kpis_finite(kpis), kpis_key(name))

    return _gate
