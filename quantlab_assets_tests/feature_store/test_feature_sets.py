"""Feature sets that coexist: a set added beside the default preset is materialized over stored
history into its own table, through the same gate, without touching the stored default features
(their checksum unchanged); strategies and the research API read features from any set."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from quantlab_assets import research
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import build_feature_set_asset, features
from quantlab_assets.feature_store.core.features import PresetError, load_preset
from quantlab_assets.feature_store.core.sets import all_feature_names, load_feature_sets, sets_for
from quantlab_assets.feature_store.core.store import preset_version
from quantlab_assets.strategy_lab.assets import targets_key

START, END = "2024-03-04", "2024-03-28"
MINE = """\
name: mine
features:
  - {name: roc_5, kind: roc, params: {window: 5}}
  - {name: stoch_k_5, kind: stochastic, params: {window: 5}}
  - {name: cs_rank_roc_5, kind: cs_rank, params: {of: roc_5}}
"""


def test_packaged_sets_are_the_default_and_the_toolbox():
    sets = load_feature_sets(load_preset())
    assert [(s.name, s.table) for s in sets] == [("default", "features"), ("toolbox", "features_toolbox")]
    assert "sma_cross_10_20" in all_feature_names(sets) and "rsi_14" in all_feature_names(sets)
    assert sets_for(sets, ["rsi_14", "sma_cross_10_20", "ret_5"]) == {
        "features": ["rsi_14", "ret_5"],
        "features_toolbox": ["sma_cross_10_20"],
    }
    with pytest.raises(KeyError, match="nope"):
        sets_for(sets, ["nope"])


@pytest.mark.parametrize(
    "file,body,message",
    [
        ("clash.yaml", "name: clash\nfeatures:\n  - {name: rsi_14, kind: roc, params: {window: 3}}\n", "'rsi_14'"),
        ("other.yaml", MINE, "must equal the file name 'other'"),
    ],
)
def test_a_bad_set_is_refused_naming_file_and_field(tmp_path, file, body, message):
    (tmp_path / file).write_text(body)
    with pytest.raises(PresetError, match=message) as err:
        load_feature_sets(load_preset(), tmp_path)
    assert str(tmp_path / file) in str(err.value)
    with pytest.raises(PresetError, match="does not exist"):
        load_feature_sets(load_preset(), tmp_path / "missing")


def test_lineage_shows_the_sets_and_what_reads_them():
    graph = defs.resolve_asset_graph()
    toolbox = dg.AssetKey("features_toolbox")
    assert graph.get(toolbox).group_name == "feature_store"
    assert graph.get(toolbox).code_version == preset_version(load_feature_sets(load_preset())[1].preset)
    assert graph.get(toolbox).code_version != graph.get(dg.AssetKey("features")).code_version
    assert graph.get(targets_key("sma_cross_10_20")).parent_keys >= {toolbox}
    assert dg.AssetKey("features") not in graph.get(targets_key("sma_cross_10_20")).parent_keys
    assert dg.AssetKey("features") in graph.get(targets_key("momentum_topk")).parent_keys


def _checksum(db, table: str) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            f"SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY symbol, date)) FROM {table} AS t"
        ).fetchone()[0]


def test_a_set_added_over_stored_history_leaves_the_default_features_untouched(
    lab_env, small_universe, tmp_path, monkeypatch
):
    folder = tmp_path / "sets"
    folder.mkdir()
    (folder / "mine.yaml").write_text(MINE)
    monkeypatch.setenv("QUANTLAB_FEATURE_SETS", str(folder))
    mine = load_feature_sets(load_preset(), folder)[1]
    lab = dg.Definitions(
        assets=[symbols, ohlcv, features, build_feature_set_asset(mine)],
        asset_checks=[ohlcv_quality_gate],
        resources=defs.resources,
        executor=dg.in_process_executor,
    )
    job = lab.resolve_implicit_global_asset_job_def()

    def run(keys, start, end):
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        result = job.execute_in_process(
            instance=dg.DagsterInstance.get(), tags=tags, asset_selection=keys, raise_on_error=False
        )
        assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        return result

    run([dg.AssetKey("ohlcv")], str(shift_sessions(START, -260).date()), END)
    run([dg.AssetKey("features")], START, END)
    db = lab_env["QUANTLAB_DB"]
    before = _checksum(db, "features")
    # The new set, over the same stored history: its own table, gate and code version.
    result = run([dg.AssetKey("features_mine")], START, END)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for name in ("no_lookahead_leakage", "incremental_equals_batch", "schema_matches_preset", "upstream_complete"):
        assert checks[name].passed, (name, checks[name].description)
    assert all(e.asset_key == dg.AssetKey("features_mine") for e in result.get_asset_check_evaluations())
    assert _checksum(db, "features") == before
    with duckdb.connect(str(db), read_only=True) as con:
        cols = [r[0] for r in con.execute("DESCRIBE features_mine").fetchall()]
        rows = con.execute("SELECT count(*), count(roc_5) FROM features_mine").fetchone()
    assert cols == ["date", "symbol", "warm", "roc_5", "stoch_k_5", "cs_rank_roc_5"]
    assert rows[0] == 5 * 19 and rows[1] == rows[0]
    # Re-materializing the default features changes nothing either (same code, same rows).
    run([dg.AssetKey("features")], START, END)
    assert _checksum(db, "features") == before

    # The research API reads features from any set (QUANTLAB_FEATURE_SETS at call time), joined.
    data = research.load_data(START, END, ["rsi_14", "roc_5", "stoch_k_5"], db=db, labels=False)
    assert list(data.features.columns) == ["date", "symbol", "rsi_14", "roc_5", "stoch_k_5"]
    assert len(data.features) == 5 * 19 and data.features["roc_5"].notna().all()
    spec = {
        "name": "roc_trend",
        "signal": {"kind": "feature", "feature": "roc_5"},
        "selection": {"kind": "threshold", "feature": "roc_5", "long_above": 0.0, "short_below": 0.0},
        "rebalance": {"frequency": "daily"},
        "constraints": {"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 1},
    }
    out = research.backtest(spec, START, END, db=db)
    assert len(out.equity) == 19 and (out.targets.targets["weight"] != 0).any()
