"""Modules split by concern (issue 21) stay the public API of their package: every public name a
module defined before its split is importable from it, and what it hands out is the very object
of its new home (one definition, never a copy). The names are the old modules' top-level public
definitions (and names they imported that tests read from them)."""

from __future__ import annotations

import importlib

import pytest

BEFORE_THE_SPLIT = {
    "quantlab_assets.backtest_engine.core.engine": (
        "BPS BacktestOutput BacktestState CASH_SYMBOL DEFAULT_CAPITAL DailyResult EQUITY_COLUMNS POSITION_COLUMNS "
        "SKIPPED_COLUMNS SKIP_REASONS STATE_COLUMNS SkippedOrders TRADE_COLUMNS Trades concat_results run_backtest "
        "simulate state_from_frame state_to_frame SESSIONS_PER_YEAR"
    ),
    "quantlab_assets.data_curator.core.alphavantage": (
        "AlphaVantageDailyQuotaExceeded AlphaVantageError AlphaVantageInvalidApiKey AlphaVantageInvalidRequest "
        "AlphaVantageKeptThrottling AlphaVantageMalformedResponse AlphaVantagePremiumRequired AlphaVantageProvider "
        "AlphaVantageThrottled AlphaVantageTransientError COMPACT_WINDOW_DAYS FUNCTIONS IngestBudgetExhausted "
        "MAX_REPLY_BYTES OUTPUTSIZES"
    ),
    "quantlab_assets.feature_store.core.features": (
        "BAR_FIELDS BLOCK_DATES BLOCK_SYMBOLS BollingerParams CandleParams CrossSectionParams DEFAULT_PRESET_FILE "
        "EmaParams FeatureOverflow FeaturePreset FeatureSpec KINDS KINDS_VERSION Kind MAX_EMA_SPAN MAX_SPREAD_WINDOW "
        "MAX_WINDOW MacdParams MomentumParams NoParams OHLCV_COLUMNS Panel PresetError RESERVED_NAMES ReturnParams "
        "Span SpreadParams SpreadWindow VolatilityParams WilderParams Window WindowParams compute_features definable "
        "describe_overflow load_preset market_proxy missing_rates pivot_panel"
    ),
    "quantlab_assets.research.sweep": (
        "EXPERIMENT_RESULTS Evaluation Fold KPIS Period SWEEPS_DIR SharedArrays Sweep SweepError SweepFile "
        "SweepResult Variant WalkForward check_size estimate_line evaluate find_sweep leaderboard_markdown "
        "load_sweep period_kpis promote results_for_storage run_sweep run_sweep_from_warehouse run_variant "
        "store_sweep sweep_features sweep_from_record sweep_history_from sweep_record sweep_results"
    ),
    "quantlab_assets.batch_orchestrator.cli": (
        "CliError build_parser check_lines cmd_last_run cmd_leaderboard cmd_override cmd_overrides cmd_plan "
        "cmd_rerun cmd_runs main"
    ),
    "quantlab_assets.strategy_lab.core.construct": (
        "Decision EPS LIMIT_TOLERANCE REBALANCE_ANCHOR SELECTIONS WEIGHTINGS book_nb constraint_violations "
        "cross_sectional cross_sectional_rows decide decide_nb decide_params limit_turnover limit_turnover_nb "
        "may_violate note_text rebalance_mask universe_filter universe_of"
    ),
    "quantlab_assets.common.warehouse": (
        "Column NotADuckDBFile RESTORE_HINT SchemaMismatchError TableSchema WarehouseDamaged WarehouseError "
        "WarehouseLocked WarehouseMissing append_rows append_rows_in_transaction conform connect ensure_table "
        "file_identity read_slice read_strategy_slice replace_slice replace_slice_in_transaction "
        "replace_strategy_slice replace_table_in_transaction stored_tables table_checksum table_columns transaction "
        "validate_database_path verify_readable"
    ),
}


@pytest.mark.parametrize("module", sorted(BEFORE_THE_SPLIT))
def test_every_name_of_the_module_before_its_split_is_still_there(module):
    mod = importlib.import_module(module)
    missing = [name for name in BEFORE_THE_SPLIT[module].split() if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize(
    ("module", "name", "home"),
    [
        ("quantlab_assets.backtest_engine.core.engine", "simulate", "quantlab_assets.backtest_engine.core.simulation"),
        ("quantlab_assets.backtest_engine.core.engine", "run_backtest", "quantlab_assets.backtest_engine.core.frames"),
        (
            "quantlab_assets.backtest_engine.core.engine",
            "BacktestState",
            "quantlab_assets.backtest_engine.core.account",
        ),
        (
            "quantlab_assets.data_curator.core.alphavantage",
            "AlphaVantageThrottled",
            "quantlab_assets.data_curator.core.alphavantage_errors",
        ),
        ("quantlab_assets.feature_store.core.features", "load_preset", "quantlab_assets.feature_store.core.preset"),
        ("quantlab_assets.feature_store.core.features", "KINDS", "quantlab_assets.feature_store.core.kinds"),
        ("quantlab_assets.feature_store.core.features", "missing_rates", "quantlab_assets.feature_store.core.coverage"),
        ("quantlab_assets.research.sweep", "evaluate", "quantlab_assets.research.fast_path"),
        ("quantlab_assets.research.sweep", "run_sweep", "quantlab_assets.research.sweep_run"),
        ("quantlab_assets.research.sweep", "load_sweep", "quantlab_assets.research.sweep_spec"),
        ("quantlab_assets.batch_orchestrator.cli", "cmd_runs", "quantlab_assets.batch_orchestrator.runs_cli"),
        ("quantlab_assets.strategy_lab.core.construct", "universe_of", "quantlab_assets.strategy_lab.core.universe"),
        ("quantlab_assets.strategy_lab.core.construct", "EPS", "quantlab_assets.strategy_lab.core.limits"),
        ("quantlab_assets.common.warehouse", "connect", "quantlab_assets.common.warehouse_file"),
    ],
)
def test_the_public_module_hands_out_the_new_homes_object(module, name, home):
    assert getattr(importlib.import_module(module), name) is getattr(importlib.import_module(home), name)
