"""Both instance configurations (the embedded SQLite default and the Postgres example) load
through Dagster's own schema validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("source", ["dagster.yaml", "docs/dagster.postgres.yaml"])
def test_instance_config_loads(tmp_path, monkeypatch, source):
    for var in ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_DB"):
        monkeypatch.setenv(var, "x")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
    shutil.copy(ROOT / source, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    handler = config["python_logs"]["dagster_handler_config"]["handlers"]["run_artifacts"]["class"]
    assert handler == "quantlab_assets.batch_orchestrator.run_artifacts.RunArtifactsHandler"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    if "postgres" in source:
        assert config["storage"]["custom"]["class"] == "QuantLabPostgresStorage"
    else:
        assert config["storage"]["custom"]["class"] == "QuantLabSqliteStorage"
        # Dead runs are failed by run monitoring through the launcher's worker health check.
        assert config["run_launcher"]["class"] == "QuantLabRunLauncher"
        assert config["run_monitoring"]["enabled"] is True and config["run_monitoring"]["max_resume_run_attempts"] == 0


def test_a_misspelt_key_is_rejected(tmp_path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text().replace("storage:", "storgae:"))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_the_walkthrough_names_the_tables_behind_every_asset_key():
    from quantlab_assets.batch_orchestrator.run_artifacts import tables_of

    assert tables_of("ohlcv") == "ohlcv, ohlcv_ingest_log, ohlcv_rejects, symbols"
    assert tables_of("features") == "features"
    assert tables_of("features_toolbox") == "features_toolbox"  # an extra feature set
    assert tables_of("momentum_topk/momentum_topk_targets") == "targets"
    assert tables_of("momentum_topk/momentum_topk_approved_targets") == "approved_targets"
    assert tables_of("momentum_topk/momentum_topk_backtest_kpis") == "backtest_kpis"
    assert tables_of("momentum_topk/momentum_topk_backtest").startswith("backtest_equity, ")
    assert tables_of("momentum_topk/momentum_topk_approvals") == "approvals, approval_log, approval_overrides"
    assert tables_of("strategy_leaderboard") == ""
