"""The strategy lab's gate on each strategy's stored targets; the rules are in ``core.gate``."""

import dagster as dg

from quantlab_assets.common.warehouse import read_slice
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import gate_check_result
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import WarehouseResource
from quantlab_assets.strategy_lab.assets import targets_key
from quantlab_assets.strategy_lab.core.gate import targets_gate
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import TARGETS


def build_targets_checks(spec: StrategySpec):
    key = targets_key(spec.name)

    @dg.multi_asset_check(
        name=f"{spec.name}_targets_gate",
        specs=[
            dg.AssetCheckSpec(n, asset=key, blocking=True, description=d, partitions_def=trading_day_partitions)
            for n, d in [
                ("constraint_violations_zero", "Every decided book respects the strategy's constraints."),
                ("symbols_in_registry", "Every target symbol is in the symbol registry."),
                ("weights_finite", "Every weight is a finite number."),
                ("one_row_per_symbol_and_day", "No duplicate (date, symbol) targets."),
            ]
        ],
    )
    def _gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource):
        start, end = partition_dates(context)
        with warehouse.get_connection() as con:
            stored = read_slice(con, TARGETS, start, end)
        stored = stored[stored["strategy"] == spec.name]
        for result in targets_gate(stored, spec, market_data.registry().tickers):
            yield gate_check_result(result, key)

    return _gate
