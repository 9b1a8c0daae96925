"""A one-name registry with one year of CSV data, a strategies folder of one's own
(QUANTLAB_STRATEGIES) and the packaged risk rules: ohlcv -> features_toolbox -> targets ->
backtest -> KPIs -> approvals runs end to end with the shipped sma_cross_10_20."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import FEATURE_SETS, build_feature_set_asset
from quantlab_assets.portfolio_supervisor.assets import build_supervisor_assets
from quantlab_assets.portfolio_supervisor.core.rules import RulesError, load_rules
from quantlab_assets.portfolio_supervisor.resources import SupervisorResource
from quantlab_assets.strategy_lab.assets import build_targets_asset, strategy_key
from quantlab_assets.strategy_lab.core.spec import load_strategy

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-01-02", "2024-12-31"


@pytest.fixture
def own_folder(tmp_path, monkeypatch):
    folder = tmp_path / "my_strategies"
    folder.mkdir()
    shutil.copy(ROOT / "strategies" / "sma_cross_10_20.yaml", folder)
    monkeypatch.setenv("QUANTLAB_STRATEGIES", str(folder))
    monkeypatch.delenv("QUANTLAB_RISK_RULES", raising=False)
    return folder


def test_own_strategies_folder_needs_no_edit_of_the_packaged_rules(own_folder, tmp_path):
    # The packaged rules name shipped strategies absent from this folder: left out, not an error.
    rules = SupervisorResource().rules()
    assert rules.strategies == {} and rules.for_strategy("sma_cross_10_20") == rules.defaults
    # A rules file of one's own still refuses a name that is not a strategy (a typo).
    mine = tmp_path / "rules.yaml"
    mine.write_text("strategies: {sma_cross_1020: {max_weight: 1.0}}\n")
    with pytest.raises(RulesError, match="no strategy named 'sma_cross_1020'"):
        SupervisorResource(rules_file=str(mine)).rules()
    assert load_rules(None, {"short_term_reversal"}).for_strategy("short_term_reversal").max_turnover == 0.5


def test_one_name_one_year_of_csv_runs_end_to_end(lab_env, own_folder, tmp_path, monkeypatch):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    bars = (
        SyntheticProvider(seed=8, sectors={"ACME": "Tech"}).fetch(["ACME"], date(2024, 1, 2), date(2024, 12, 31)).bars
    )
    bars[["date", "open", "high", "low", "close", "volume"]].to_csv(csv_dir / "ACME.csv", index=False)
    registry = tmp_path / "symbols.yaml"
    registry.write_text("universe: mine\nsymbols:\n  - {symbol: ACME, sector: Tech}\n")
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(csv_dir))
    spec = load_strategy(own_folder / "sma_cross_10_20.yaml")
    toolbox = next(s for s in FEATURE_SETS if s.name == "toolbox")
    lab = dg.Definitions(
        assets=[
            symbols,
            ohlcv,
            build_feature_set_asset(toolbox),
            build_targets_asset(spec),
            build_backtest_assets(spec),
            build_supervisor_assets(spec),
        ],
        asset_checks=[ohlcv_quality_gate],
        resources=defs.resources,
        executor=dg.in_process_executor,
    )
    job = lab.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END}
    keys = [dg.AssetKey("ohlcv"), dg.AssetKey(toolbox.asset)]
    keys += [strategy_key(spec.name, s) for s in ("targets", "backtest", "backtest_kpis", "approvals")]
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=keys, raise_on_error=False
    )
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.description)
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed == []
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        t = con.execute("SELECT date, weight FROM targets WHERE strategy = ? ORDER BY date", [spec.name]).df()
        eq = con.execute("SELECT equity FROM backtest_equity WHERE strategy = ? ORDER BY date", [spec.name]).df()
        approvals = con.execute("SELECT count(*) FROM approvals WHERE strategy = ?", [spec.name]).fetchone()[0]
    sessions = len(bars)
    assert len(t) == len(eq) == approvals == sessions
    # Flat while the averages warm up (21 sessions), then always long or short: held between crosses.
    w = t["weight"].to_numpy()
    assert (w[:20] == 0).all() and set(np.unique(w[20:])) <= {-1.0, 0.0, 1.0} and (w != 0).sum() > 100
    assert np.isfinite(eq["equity"]).all()
