"""The backtest's gate: accounting identity every day, no trade before its decision, finite KPIs."""

import dagster as dg
import numpy as np

from quantlab_assets.backtest_engine.assets import FIRST_SESSION, backtest_key, kpis_key
from quantlab_assets.common.warehouse import read_strategy_slice
from quantlab_assets.backtest_engine.core.store import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_TRADES,
    accounting_breaks,
)
from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import WarehouseResource
from quantlab_assets.strategy_lab.core.spec import StrategySpec

_LEVEL_KPIS = ["total_return", "cagr", "annual_volatility", "max_drawdown", "turnover"]


def build_backtest_checks(spec: StrategySpec):
    name = spec.name

    @dg.multi_asset_check(
        name=f"{name}_backtest_gate",
        specs=[
            dg.AssetCheckSpec("accounting_identity", asset=backtest_key(name), blocking=True,
                              partitions_def=trading_day_partitions,
                              description="equity = cash + Σ shares × price at every close"),
            dg.AssetCheckSpec("no_trade_before_decision", asset=backtest_key(name), blocking=True,
                              partitions_def=trading_day_partitions,
                              description="every fill is dated after the close that decided it"),
            dg.AssetCheckSpec("kpis_finite", asset=kpis_key(name), blocking=True,
                              partitions_def=trading_day_partitions,
                              description="level KPIs are finite once there are two sessions"),
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
            breaks = accounting_breaks(equity, positions)
            yield dg.AssetCheckResult(
                asset_key=backtest_key(name), check_name="accounting_identity", passed=breaks.empty,
                description=f"identity holds on all {len(equity)} sessions" if breaks.empty else
                f"{len(breaks)} sessions break it, first {breaks['date'].iloc[0].date()}",
                metadata={"sessions": len(equity), "breaks": dg.MetadataValue.md(markdown_table(breaks))})
        if "no_trade_before_decision" in selected:
            early = trades[~(trades["date"] > trades["decision_date"])] if len(trades) else trades
            yield dg.AssetCheckResult(
                asset_key=backtest_key(name), check_name="no_trade_before_decision", passed=early.empty,
                description=f"all {len(trades)} fills come after their decision" if early.empty else
                f"{len(early)} fills on or before their decision date",
                metadata={"fills": len(trades), "offending": dg.MetadataValue.md(markdown_table(early))})
        if "kpis_finite" in selected:
            since = kpis[(kpis["scope"] == "since_start") & (kpis["sessions"] >= 2)]
            bad = [c for c in _LEVEL_KPIS if len(since) and not np.isfinite(since[c].to_numpy(float)).all()]
            yield dg.AssetCheckResult(
                asset_key=kpis_key(name), check_name="kpis_finite", passed=not bad,
                description="level KPIs finite" if not bad else f"non-finite values in {bad}",
                metadata={"rows_checked": len(since)})

    return _gate
