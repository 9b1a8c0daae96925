"""Issue 22 point 4: three names of one year of CSV data. Strategies whose book stays empty carry a
visible warning on their targets naming why in concrete numbers: the feature that is undefined,
the sessions it needs and the sessions stored ("mom_12_1 undefined: needs 253 sessions, 252
stored"), or the min_names comparison ("3 scorable names < min_names 10")."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import FEATURE_SETS, build_feature_set_asset
from quantlab_assets.strategy_lab.assets import build_targets_asset, strategy_key
from quantlab_assets.strategy_lab.core.spec import load_strategy

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-01-02", "2024-12-31"
NAMES = {"ACME": "Tech", "BOLT": "Energy", "CURE": "Health"}


@pytest.fixture
def three_names_one_year(lab_env, tmp_path, monkeypatch):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    bars = SyntheticProvider(seed=4, sectors=NAMES).fetch(list(NAMES), date(2024, 1, 2), date(2024, 12, 31)).bars
    for name, rows in bars.groupby("symbol"):
        rows[["date", "open", "high", "low", "close", "volume"]].to_csv(csv_dir / f"{name}.csv", index=False)
    registry = tmp_path / "symbols.yaml"
    registry.write_text(
        "universe: three\nsymbols:\n" + "".join(f"  - {{symbol: {s}, sector: {x}}}\n" for s, x in NAMES.items())
    )
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(csv_dir))
    return int(bars["date"].nunique())


def _warnings(names: list[str]) -> dict[str, str]:
    specs = [load_strategy(ROOT / "strategies" / f"{n}.yaml") for n in names]
    sets = [s for s in FEATURE_SETS if any(f in s.preset.feature_names for p in specs for f in p.features_used())]
    lab = dg.Definitions(
        assets=[symbols, ohlcv, *(build_feature_set_asset(s) for s in sets), *(build_targets_asset(p) for p in specs)],
        asset_checks=[ohlcv_quality_gate],
        resources=defs.resources,
        executor=dg.in_process_executor,
    )
    job = lab.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END}
    keys = [dg.AssetKey("ohlcv"), *(dg.AssetKey(s.asset) for s in sets), *(strategy_key(n, "targets") for n in names)]
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=keys, raise_on_error=False
    )
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    out: dict[str, set[str]] = {}
    for e in result.get_asset_check_evaluations():
        if e.check_name == "book_not_empty" and not e.passed:  # holidays pass: nothing to hold
            assert e.severity == dg.AssetCheckSeverity.WARN
            out.setdefault(e.asset_key.path[0], set()).add(e.description)
    assert all(len(v) == 1 for v in out.values()), out  # one line for the range, on every session
    return {n: v.pop() for n, v in out.items()}


def test_an_empty_book_says_why_in_numbers(three_names_one_year):
    stored = three_names_one_year  # 252 sessions in 2024
    warned = _warnings(["momentum_topk", "low_volatility"])
    assert set(warned) == {"momentum_topk", "low_volatility"}, warned
    mom = warned["momentum_topk"]
    assert mom.startswith(f"EMPTY BOOK: held nothing on any of {stored} session(s) of {START}..{END}: "), mom
    assert f"mom_12_1 undefined: needs 253 sessions, {stored} stored" in mom, mom
    low = warned["low_volatility"]
    min_names = load_strategy(ROOT / "strategies" / "low_volatility.yaml").constraints.min_names
    assert f"3 scorable names < min_names {min_names}" in low, low
