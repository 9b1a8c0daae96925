"""A one-name universe passes the features gate (cross-sectional features are NaN by definition
there), history_complete respects the listing date and the first stored bar, and the preset the
lineage is built from is the one the computation uses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dagster as dg
import duckdb
import pandas as pd
import pytest

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.feature_store.core.features import definable, load_preset, missing_rates
from quantlab_assets.feature_store.core.store import history_gaps, preset_version

END = "2024-04-05"
LONG_PRESET = """\
name: long
features:
  - {name: ret_1, kind: return, params: {horizon: 1}}
  - {name: sma_ratio_400, kind: sma_ratio, params: {window: 400}}
"""


def _registry(tmp_path, monkeypatch, entry: str):
    path = tmp_path / "symbols.yaml"
    path.write_text(f"universe: one\nsymbols:\n  - {entry}\n")
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(path))


def _run(selection, start, end):
    from quantlab_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        tags=tags,
        raise_on_error=False,
        asset_selection=[dg.AssetKey(k) for k in selection],
    )


def _checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey("features")}


def test_one_name_listed_within_the_lookback_runs_the_features_gate_green(lab_env, tmp_path, monkeypatch):
    # Listed 2023-06-01: the features of 2024-03..04 reach back before the listing.
    _registry(tmp_path, monkeypatch, "{symbol: GOOG, sector: Tech, first_date: 2023-06-01}")
    assert _run(["ohlcv"], "2023-06-01", END).success
    result = _run(["features"], "2024-03-25", END)
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    checks = _checks(result)
    assert checks["missing_rate_after_warmup"].passed
    history = checks["history_complete"]
    assert history.passed and "warm-up after a listing's first bar" in history.description
    assert "2022" not in history.description  # never a date before the listing
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        stored = con.execute("SELECT * FROM features ORDER BY date").df()
    assert stored["cs_z_ret_5"].isna().all() and stored["ret_5"].notna().all()
    assert (stored["cs_rank_ret_5"] == 1.0).all()  # a rank is defined for one name


def test_history_gap_before_the_first_stored_bar_names_what_to_ingest(lab_env, tmp_path, monkeypatch):
    # No listing date, and bars stored only from 2024-01-02: the lookback needs earlier history.
    _registry(tmp_path, monkeypatch, "{symbol: GOOG, sector: Tech}")
    assert _run(["ohlcv"], "2024-01-02", END).success
    result = _run(["features"], "2024-04-01", END)
    history = _checks(result)["history_complete"]
    need = shift_sessions("2024-04-01", -load_preset().lookback_sessions).date()
    assert not history.passed and f"GOOG from {need}" in history.description
    assert "first_date" in history.description  # the hint for a younger listing


def test_history_gaps_from_listing_dates():
    preset = load_preset()
    stored = pd.DataFrame(
        {"date": pd.to_datetime(["2024-04-01"] * 3), "symbol": ["AAA", "BBB", "CCC"], "warm": [False, False, True]}
    )
    need = shift_sessions("2024-04-01", -preset.lookback_sessions)
    listings = pd.DataFrame(
        {
            "symbol": ["AAA", "BBB", "CCC"],
            # AAA listed after the lookback start and stored from its listing: a young listing.
            # BBB listed before the lookback start but stored only from 2023-09-01: a gap.
            "first_date": pd.to_datetime(["2023-10-02", "2020-01-02", None]),
            "first_bar": pd.to_datetime(["2023-10-02", "2023-09-01", "2015-01-02"]),
        }
    )
    gaps, text = history_gaps(stored, preset, listings)
    assert gaps == 1 and f"BBB from {need.date()}" in text and "AAA" not in text.split(":")[1]
    listings.loc[1, "first_date"] = pd.Timestamp("2023-09-01")  # BBB listed when its bars start
    assert history_gaps(stored, preset, listings)[0] == 0


def test_missing_rate_judges_each_feature_against_what_it_can_be():
    preset = load_preset()
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-04-01", "2024-04-01", "2024-04-02"]),
            "symbol": ["AAA", "BBB", "AAA"],
            "warm": True,
        }
    )
    for name in preset.feature_names:
        frame[name] = 0.5
    frame.loc[2, [n for n in preset.feature_names if n.startswith("cs_z_")]] = float("nan")  # one name
    frame.loc[0, "ret_5"] = float("nan")
    frame.loc[0, "cs_z_ret_5"] = frame.loc[0, "cs_rank_ret_5"] = float("nan")
    frame.loc[1, "cs_z_ret_20"] = float("nan")  # missing although two names have a source
    frame.loc[1, "ret_20"] = 0.7
    can = definable(frame, preset)
    assert not can.loc[2, "cs_z_vol_20"] and can.loc[2, "cs_rank_vol_20"] and not can.loc[0, "cs_z_ret_5"]
    rates = missing_rates(frame, preset)
    assert rates["cs_z_vol_20"] == 0.0 and rates["ret_5"] == pytest.approx(1 / 3)
    assert rates["cs_z_ret_5"] == 0.0  # only undefinable rows are NaN
    # Definable on the two rows of the date with two distinct sources; NaN on one of them.
    assert rates["cs_z_ret_20"] == 0.5


def test_a_preset_longer_than_the_default_drives_mapping_code_version_and_computation(lab_env, tmp_path):
    preset_path = tmp_path / "long.yaml"
    preset_path.write_text(LONG_PRESET)
    long = load_preset(preset_path)
    assert long.lookback_sessions == 400 > load_preset().lookback_sessions
    script = textwrap.dedent(f"""
        import json, dagster as dg, duckdb
        from quantlab_assets.common.calendar import shift_sessions
        from quantlab_assets.feature_store import assets
        from quantlab_assets.definitions import defs
        from quantlab_assets.partitions import weekdays_spanning
        out = {{"offset": assets.features_lookback.start_offset, "need": -weekdays_spanning(400),
               "code_version": assets.features.code_versions_by_key[dg.AssetKey("features")]}}
        job = defs.resolve_implicit_global_asset_job_def()
        instance = dg.DagsterInstance.get()
        start = str(shift_sessions("{END}", -400).date())
        tags = {{"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": "{END}"}}
        ok = job.execute_in_process(instance=instance, tags=tags, asset_selection=[dg.AssetKey("ohlcv")]).success
        run = job.execute_in_process(instance=instance, partition_key="{END}", raise_on_error=False,
                                     asset_selection=[dg.AssetKey("features")])
        with duckdb.connect({str(lab_env["QUANTLAB_DB"])!r}, read_only=True) as con:
            row = con.execute("SELECT bool_and(warm), count(sma_ratio_400), count(*) FROM features").fetchone()
        out.update(ingested=ok, success=run.success, all_warm=row[0], sma=row[1], rows=row[2])
        print(json.dumps(out))
    """)
    import os

    env = {**os.environ, "QUANTLAB_FEATURE_PRESET": str(preset_path), "QUANTLAB_SYMBOLS": str(tmp_path / "two.yaml")}
    (tmp_path / "two.yaml").write_text(
        "universe: two\nsymbols:\n  - {symbol: AAA, sector: Tech}\n  - {symbol: BBB, sector: Energy}\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["offset"] == out["need"]  # the mapping reaches the long preset's 400 sessions
    assert out["code_version"] == preset_version(long)
    assert out["ingested"] and out["success"]
    assert out["all_warm"] and out["sma"] == out["rows"] == 2  # computed from a full 400-session window


def test_a_run_configured_with_another_preset_fails_instead_of_reading_too_little(lab_env, tmp_path):
    from quantlab_assets.feature_store.assets import features
    from quantlab_assets.feature_store.resources import FeatureStoreResource
    from quantlab_assets.resources import ArtifactsResource, WarehouseResource

    preset_path = tmp_path / "long.yaml"
    preset_path.write_text(LONG_PRESET)
    context = dg.build_asset_context(partition_key=END)
    with pytest.raises(dg.Failure, match="not the preset 'default' the lineage was built from"):
        list(  # the body yields its result and its upstream check: run it to the end
            features(
                context,
                warehouse=WarehouseResource(),
                artifacts=ArtifactsResource(),
                feature_store=FeatureStoreResource(preset_file=str(preset_path)),
            )
        )
