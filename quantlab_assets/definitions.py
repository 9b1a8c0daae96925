"""The one ``Definitions`` of Quant Lab, found by ``workspace.yaml`` and ``-m quantlab_assets.definitions``."""

import dagster as dg

from quantlab_assets.analytics.ic_assets import feature_ic
from quantlab_assets.analytics.tearsheet_assets import build_leaderboard_asset, build_tearsheet_asset
from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.batch_orchestrator.jobs import JOBS, SCHEDULES
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.execution.assets import build_execution_asset
from quantlab_assets.execution.jobs import EXECUTION_JOBS, EXECUTION_SCHEDULES
from quantlab_assets.execution.resources import ExecutionResource
from quantlab_assets.feature_store.assets import FEATURE_SETS, feature_set_assets, features, labels
from quantlab_assets.feature_store.core.sets import all_feature_names
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.portfolio_supervisor.assets import build_supervisor_assets
from quantlab_assets.portfolio_supervisor.resources import SupervisorResource, strategy_conflicts
from quantlab_assets.research.assets import sweep_assets
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import (
    build_predictions_asset,
    build_strategy_files_asset,
    build_targets_asset,
    load_strategy_specs,
)

# One set of strategy assets per valid strategies/*.yaml; a bad file is logged, skipped and
# shown on the strategy_files asset with its message.
# Strategies read features from any feature set (the default preset and presets/sets/*.yaml).
KNOWN_FEATURES = all_feature_names(FEATURE_SETS)
STRATEGIES, STRATEGY_ERRORS = load_strategy_specs(KNOWN_FEATURES)
strategy_files = build_strategy_files_asset(STRATEGIES, STRATEGY_ERRORS, KNOWN_FEATURES, strategy_conflicts)
strategy_assets = [
    build(spec)
    for spec in STRATEGIES
    for build in (build_targets_asset, build_backtest_assets, build_supervisor_assets, build_execution_asset)
]
# A model strategy's walk-forward predictions (docs/models.md): its targets rank them.
strategy_assets += [build_predictions_asset(spec) for spec in STRATEGIES if spec.signal.kind == "model"]
# Analytics: a tearsheet per strategy, the leaderboard of all, the features' IC.
analytics_assets = [
    *(build_tearsheet_asset(spec) for spec in STRATEGIES),
    build_leaderboard_asset(STRATEGIES),
    feature_ic,
]

defs = dg.Definitions(
    assets=[
        symbols,
        ohlcv,
        features,
        *feature_set_assets,
        labels,
        strategy_files,
        *strategy_assets,
        *analytics_assets,
        *sweep_assets,
    ],
    # Every derived contract audits its candidate rows in its own step: those gates are checks
    # declared on the assets themselves (write-audit-publish); ohlcv keeps its table checks.
    asset_checks=[ohlcv_quality_gate],
    jobs=[*JOBS, *EXECUTION_JOBS],
    schedules=[*SCHEDULES, *EXECUTION_SCHEDULES],
    resources={
        "warehouse": WarehouseResource(),
        "market_data": MarketDataResource(),
        "artifacts": ArtifactsResource(),
        "feature_store": FeatureStoreResource(),
        "supervisor": SupervisorResource(),
        "execution": ExecutionResource(),
    },
    # One process per run: steps are short and DuckDB admits one writer process per file,
    # so the multiprocess executor would cost seconds per step and contend for the lock.
    executor=dg.in_process_executor,
)
