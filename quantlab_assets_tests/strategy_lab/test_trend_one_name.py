"""End to end on a one-name registry: ohlcv -> features -> trend_sma50 targets -> backtest."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import numpy as np

from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import features
from quantlab_assets.strategy_lab.assets import build_targets_asset, strategy_key
from quantlab_assets.strategy_lab.core.spec import load_strategy

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-03-01", "2024-04-30"


def test_trend_strategy_on_one_name(lab_env, tmp_path, monkeypatch):
    registry = tmp_path / "symbols.yaml"
    registry.write_text("universe: one\nsymbols:\n  - {symbol: GOOG, sector: Communication}\n")
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
    spec = load_strategy(ROOT / "strategies" / "trend_sma50.yaml")
    one = dg.Definitions(
        assets=[symbols, ohlcv, features, build_targets_asset(spec), build_backtest_assets(spec)],
        asset_checks=[ohlcv_quality_gate],
        resources=defs.resources,
        executor=dg.in_process_executor,
    )
    job = one.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.get()

    def run(keys, start, end):
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        result = job.execute_in_process(instance=instance, tags=tags, asset_selection=keys, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        return result

    run([dg.AssetKey("ohlcv")], str(shift_sessions(START, -120).date()), str(shift_sessions(START, -1).date()))
    keys = [
        dg.AssetKey("ohlcv"),
        dg.AssetKey("features"),
        strategy_key("trend_sma50", "targets"),
        strategy_key("trend_sma50", "backtest"),
        strategy_key("trend_sma50", "backtest_kpis"),
    ]
    result = run(keys, START, END)
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.description)
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed == []
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        targets = con.execute(
            "SELECT t.date, t.weight, f.sma_ratio_50 FROM targets t JOIN features f "
            "USING (date, symbol) WHERE strategy = 'trend_sma50' ORDER BY date"
        ).df()
        equity = con.execute("SELECT * FROM backtest_equity WHERE strategy = 'trend_sma50' ORDER BY date").df()
    x = targets["sma_ratio_50"].to_numpy()
    # The file's rule by hand: long above the average, short more than 3% below, flat in between.
    assert (spec.selection.long_above, spec.selection.short_below) == (0.0, -0.03)
    expected = np.where(x > 0.0, 1.0, np.where(x < -0.03, -1.0, 0.0))
    assert np.isfinite(x).all() and (expected == 1.0).any()
    np.testing.assert_array_equal(targets["weight"].to_numpy(), expected)
    assert len(equity) == len(targets) and equity["equity"].notna().all()
