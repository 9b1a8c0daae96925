"""A warehouse materialized once per session for the research tests: ohlcv -> features, labels ->
targets -> backtest of two strategies over [START, END] on a 30-name synthetic registry."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.definitions import defs
from quantlab_assets.strategy_lab.assets import strategy_key

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-02-01", "2024-04-30"
SYMBOLS = [f"T{i:02d}" for i in range(30)]
STRATEGIES = ["low_volatility", "short_term_reversal", "sma_cross_10_20"]


@pytest.fixture(scope="session")
def lab_env_vars(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    home = tmp / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    registry = tmp / "symbols.yaml"
    sectors = ["Tech", "Energy", "Health", "Utilities"]
    registry.write_text(
        "universe: test30\nsymbols:\n"
        + "".join(f"  - {{symbol: {s}, sector: {sectors[i % 4]}}}\n" for i, s in enumerate(SYMBOLS))
    )
    return {
        "QUANTLAB_DB": str(tmp / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(tmp / "artifacts"),
        "DAGSTER_HOME": str(home),
        "QUANTLAB_DATA_PROVIDER": "synthetic",
        "QUANTLAB_SYMBOLS": str(registry),
    }


@pytest.fixture
def research_env(lab_env_vars, monkeypatch):
    for key, value in lab_env_vars.items():
        monkeypatch.setenv(key, value)
    for key in (
        "QUANTLAB_CSV_DIR",
        "ALPHAVANTAGE_API_KEY",
        "QUANTLAB_FEATURE_PRESET",
        "QUANTLAB_FEATURE_SETS",
        "QUANTLAB_STRATEGIES",
    ):
        monkeypatch.delenv(key, raising=False)
    return lab_env_vars


def run_range(keys, start, end):
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        result = job.execute_in_process(instance=instance, tags=tags, asset_selection=keys, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return result


_DONE: list = []


@pytest.fixture
def materialized(research_env):
    """The materialized warehouse (built on first use, shared by the session's research tests)."""
    if not _DONE:
        run_range(
            [dg.AssetKey("ohlcv")], str(shift_sessions(START, -260).date()), str(shift_sessions(START, -1).date())
        )
        keys = [dg.AssetKey(k) for k in ("ohlcv", "features", "features_toolbox", "labels")]
        keys += [strategy_key(s, part) for s in STRATEGIES for part in ("targets", "backtest", "backtest_kpis")]
        run_range(keys, START, END)
        _DONE.append(True)
    return Path(research_env["QUANTLAB_DB"])
