"""A LightGBM strategy through real Dagster runs: ``<s>/<s>_predictions`` is written, audited and
published like the other contracts, its targets rank the published scores, and the research API
gives the same targets and predictions bit for bit; a failed audit keeps the stored predictions."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from quantlab_assets import research
from quantlab_assets.analytics.tearsheet_assets import build_leaderboard_asset, build_tearsheet_asset
from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.publish import read_audit_rejects
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import features, labels
from quantlab_assets.strategy_lab.assets import build_predictions_asset, build_targets_asset, strategy_key
from quantlab_assets.strategy_lab.core import predictions as predictions_core
from quantlab_assets.strategy_lab.core.spec import load_strategy

START, END = "2024-03-01", "2024-04-30"
NAME = "gbm_small"
SPEC = {
    "name": NAME,
    "signal": {
        "kind": "model",
        "model": {
            "kind": "lightgbm",
            "features": ["ret_5", "ret_20", "vol_20", "rsi_14"],
            "train_sessions": 40,
            "refit_every": 10,
            "embargo": 1,
            "transform": "rank",
            "missing": "median",
            "n_estimators": 20,
            "num_leaves": 4,
            "min_child_samples": 10,
            "subsample": 0.8,
            "seed": 3,
        },
    },
    "selection": {"kind": "top_k", "k": 3},
    "rebalance": {"frequency": "weekly"},
    "constraints": {"max_weight": 0.4, "min_names": 3},
}


def _job(spec):
    assets = [ohlcv, features, labels, build_predictions_asset(spec), build_targets_asset(spec)]
    assets += [build_backtest_assets(spec), build_tearsheet_asset(spec), build_leaderboard_asset([spec])]
    return dg.Definitions(assets=assets, resources=defs.resources).resolve_implicit_global_asset_job_def()


def _run(job, keys, start, end):
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, tags=tags, asset_selection=keys, raise_on_error=False)


def _stored(db, table) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute(f"SELECT * EXCLUDE (strategy) FROM {table} ORDER BY date, symbol").df()
    for col in frame.columns:
        if "date" in col or col in ("train_start", "train_end"):
            frame[col] = pd.to_datetime(frame[col])
    return frame


def test_a_lightgbm_strategy_runs_through_the_assets_and_equals_the_research_api(
    lab_env, small_universe, tmp_path, monkeypatch
):
    path = tmp_path / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    spec = load_strategy(path)
    job = _job(spec)
    pred_key, targets_key = strategy_key(NAME, "predictions"), strategy_key(NAME, "targets")
    inputs = [dg.AssetKey(k) for k in ("ohlcv", "features", "labels")]
    assert _run(job, inputs, str(shift_sessions(START, -120).date()), END).success
    tearsheet, board = strategy_key(NAME, "tearsheet"), dg.AssetKey("strategy_leaderboard")
    chain = [pred_key, targets_key, strategy_key(NAME, "backtest"), strategy_key(NAME, "backtest_kpis")]
    result = _run(job, [*chain, tearsheet, board], START, END)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key == pred_key}
    assert checks and all(checks.values()), checks

    db = lab_env["QUANTLAB_DB"]
    stored = _stored(db, "predictions")
    assert len(stored) > 0 and stored["model_version"].nunique() >= 4  # a fit every 10 sessions
    assert (stored["train_end"] < stored["refit_date"]).all() and (stored["refit_date"] <= stored["date"]).all()

    # The research API trains the same model in memory: the same scores, the same targets.
    out = research.backtest(path, START, END, db=db)
    mine = out.targets.targets.drop(columns=["strategy"]).sort_values(["date", "symbol"]).reset_index(drop=True)
    theirs = _stored(db, "targets")
    pd.testing.assert_frame_equal(mine[theirs.columns], theirs, check_exact=True, check_dtype=False)
    scores = theirs.merge(stored[["date", "symbol", "score"]], on=["date", "symbol"], how="left")
    np.testing.assert_array_equal(scores["score_x"].to_numpy(), scores["score_y"].to_numpy())
    assert theirs["weight"].abs().sum() > 0

    # The predictions' IC, Rank IC and ICIR in the tearsheet and the leaderboard, against pandas.
    with duckdb.connect(str(db), read_only=True) as con:
        y = (
            con.execute("SELECT date, symbol, fwd_ret_5 FROM labels")
            .df()
            .assign(date=lambda f: pd.to_datetime(f["date"]))
        )
    both = stored.merge(y, on=["date", "symbol"]).dropna(subset=["fwd_ret_5"])
    daily = both.groupby("date").apply(lambda d: d["score"].corr(d["fwd_ret_5"]), include_groups=False).dropna()
    ranked = both.groupby("date").apply(
        lambda d: d["score"].corr(d["fwd_ret_5"], method="spearman"), include_groups=False
    )
    expected = {
        "prediction_IC": daily.mean(),
        "prediction_ICIR": daily.mean() / daily.std(),
        "prediction_rank_IC": ranked.dropna().mean(),
    }
    meta = {m.asset_key: m.metadata for m in result.get_asset_materialization_events() for m in [m.materialization]}
    for key, value in expected.items():
        assert meta[tearsheet][key].value == pytest.approx(value, abs=1e-9), key
    assert "prediction_IC" in meta[board]["table_preview"].value

    # A failed audit: the stored predictions stay bit for bit and the refusal is recorded.
    real = predictions_core.compute_predictions

    def a_nan_score(*args, **kwargs):
        frame, wf = real(*args, **kwargs)
        return frame.assign(score=frame["score"].where(frame.index != 0, np.nan)), wf

    monkeypatch.setattr(predictions_core, "compute_predictions", a_nan_score)
    failed = _run(job, [pred_key], START, END)
    assert not failed.success
    pd.testing.assert_frame_equal(_stored(db, "predictions"), stored, check_exact=True)
    with duckdb.connect(str(db)) as con:
        rejects = read_audit_rejects(con)
    assert (rejects["contract"] == f"predictions/{NAME}").any() and (rejects["rule"] == "scores_finite").any()
