"""Resource fields are typed and optional: unset, a field takes its environment variable when the
run uses it (not when the resource is built); set, it wins. No "" or -1 means "the environment"."""

from __future__ import annotations

import shutil
from typing import get_args

import dagster as dg
import duckdb
import pytest

from quantlab_assets.common import settings
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.core import alphavantage
from quantlab_assets.data_curator.core.registry import DEFAULT_SYMBOLS_FILE
from quantlab_assets.data_curator.resources import (
    AlphaVantageFunction,
    AlphaVantageOutputSize,
    DataProvider,
    MarketDataResource,
)
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.core.features import DEFAULT_PRESET_FILE
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.portfolio_supervisor.core.rules import DEFAULT_RULES_FILE
from quantlab_assets.portfolio_supervisor.resources import SupervisorResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource


def test_unset_fields_read_the_environment_when_used(monkeypatch, tmp_path):
    warehouse, artifacts, market = WarehouseResource(), ArtifactsResource(), MarketDataResource()
    monkeypatch.setenv("QUANTLAB_DB", str(tmp_path / "lab.duckdb"))
    monkeypatch.setenv("QUANTLAB_ARTIFACTS", str(tmp_path / "art"))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    assert warehouse.path() == tmp_path / "lab.duckdb"
    assert artifacts.root_path() == tmp_path / "art"
    assert market.provider_name() == "csv"
    monkeypatch.delenv("QUANTLAB_DB")
    assert warehouse.path() == settings.PROJECT_ROOT / settings.DEFAULT_DB


def test_set_fields_win_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANTLAB_DB", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "alphavantage")
    assert WarehouseResource(database=str(tmp_path / "mine.duckdb")).path() == tmp_path / "mine.duckdb"
    assert ArtifactsResource(root=str(tmp_path)).root_path() == tmp_path
    assert MarketDataResource(provider="Synthetic").provider_name() == "synthetic"
    with pytest.raises(ValueError, match="provider\n  Input should be 'synthetic', 'alphavantage' or 'csv'"):
        MarketDataResource(provider="yahoo")  # refused when built, not when first used


def test_lock_wait_is_a_number_of_seconds_or_unset():
    assert WarehouseResource().lock_wait_s is None
    assert WarehouseResource(lock_wait_s=0).lock_wait_s == 0
    with pytest.raises(Exception, match="greater than or equal to 0"):
        WarehouseResource(lock_wait_s=-1)


def test_files_follow_their_variables(monkeypatch, tmp_path):
    symbols = shutil.copy(DEFAULT_SYMBOLS_FILE, tmp_path / "symbols.yaml")
    text = (tmp_path / "symbols.yaml").read_text().replace("\nuniverse: ", "\nuniverse: copied_", 1)
    (tmp_path / "symbols.yaml").write_text(text)
    preset = tmp_path / "preset.yaml"
    preset.write_text(DEFAULT_PRESET_FILE.read_text().replace("\nname: ", "\nname: copied_", 1))
    rules = shutil.copy(DEFAULT_RULES_FILE, tmp_path / "rules.yaml")
    assert MarketDataResource().registry().universe != MarketDataResource(symbols_file=str(symbols)).registry().universe
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(symbols))
    assert MarketDataResource().registry().universe.startswith("copied_")
    assert not FeatureStoreResource().preset().name.startswith("copied_")
    monkeypatch.setenv("QUANTLAB_FEATURE_PRESET", str(preset))
    assert FeatureStoreResource().preset().name.startswith("copied_")
    monkeypatch.setenv("QUANTLAB_RISK_RULES", str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="missing.yaml"):
        SupervisorResource().rules()
    SupervisorResource(rules_file=str(rules)).rules()  # the field wins over the (bad) variable


CLOSED_CHOICES = [
    ("provider", "cvs", ["synthetic", "alphavantage", "csv"]),
    ("alphavantage_function", "TIME_SERIES_WEEKLY", ["TIME_SERIES_DAILY", "TIME_SERIES_DAILY_ADJUSTED"]),
    ("alphavantage_outputsize", "fll", ["auto", "compact", "full"]),
]


@pytest.mark.parametrize("field,typo,valid", CLOSED_CHOICES, ids=[c[0] for c in CLOSED_CHOICES])
def test_a_typo_in_run_config_is_refused_by_dagster_naming_the_field_and_the_valid_values(field, typo, valid):
    """What the launchpad does with a run config: Dagster's own validation, before any step runs."""
    job = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterInvalidConfigError) as err:
        dg.validate_run_config(job, {"resources": {"market_data": {"config": {field: typo}}}})
    message = str(err.value)
    assert f"root:resources:market_data:config:{field} not in enum type" in message and f"got {typo}" in message
    listed = message.split("not in enum type ", 1)[1]
    assert all(v in listed for v in valid), message
    for value in valid:  # and every valid value passes
        dg.validate_run_config(job, {"resources": {"market_data": {"config": {field: value}}}})


def test_the_closed_choices_are_the_ones_the_core_and_settings_accept():
    assert get_args(AlphaVantageFunction) == alphavantage.FUNCTIONS
    assert get_args(AlphaVantageOutputSize) == alphavantage.OUTPUTSIZES
    assert tuple(m.value for m in DataProvider) == settings.PROVIDERS


def test_the_provider_chosen_in_run_config_reaches_the_ingest(lab_env, small_universe, tmp_path, monkeypatch):
    # The variable says csv over an empty folder (the ingest would fail); the run config says synthetic.
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(tmp_path))
    result = dg.materialize(
        [symbols, ohlcv],
        resources=defs.resources,
        partition_key="2024-03-04",
        run_config={"resources": {"market_data": {"config": {"provider": "synthetic"}}}},
    )
    assert result.success
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        assert con.execute("SELECT DISTINCT source FROM ohlcv_ingest_log").fetchall() == [("synthetic",)]
