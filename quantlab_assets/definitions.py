"""The one ``Definitions`` of Quant Lab, found by ``workspace.yaml`` and ``-m quantlab_assets.definitions``."""

from __future__ import annotations

import dagster as dg

from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource

daily_chain = dg.define_asset_job(
    "daily_chain",
    selection=dg.AssetSelection.assets(ohlcv).downstream(),
    description="The production chain for trading-day partitions, ohlcv first.",
)

defs = dg.Definitions(
    assets=[symbols, ohlcv],
    asset_checks=[ohlcv_quality_gate],
    jobs=[daily_chain],
    resources={
        "warehouse": WarehouseResource(),
        "market_data": MarketDataResource(),
        "artifacts": ArtifactsResource(),
    },
    # One process per run: steps are short and DuckDB admits one writer process per file,
    # so the multiprocess executor would cost seconds per step and contend for the lock.
    executor=dg.in_process_executor,
)
