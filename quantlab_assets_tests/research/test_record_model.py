"""``quantlab backtest --record`` for a model strategy: the backtest is recorded with each model its
walk-forward trained (kind ``model``), the backtest re-runs to the same numbers, and a model row
is refused by ``experiment show`` with a one-line reason (not a traceback)."""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from quantlab_assets import research
from quantlab_assets.batch_orchestrator.cli import main
from quantlab_assets_tests.research.conftest import END, START

SPEC = """\
name: ridge_small
signal:
  kind: model
  model:
    kind: ridge
    features: [ret_5, ret_20, vol_20, rsi_14]
    label: fwd_ret_1
    train_sessions: 20
    refit_every: 10
    alpha: 0.5
selection: {kind: top_k, k: 5}
rebalance: {frequency: weekly}
constraints: {max_weight: 0.25, min_names: 5}
"""


def test_backtest_record_of_a_model_strategy(materialized, tmp_path, capsys):
    path = tmp_path / "ridge_small.yaml"
    path.write_text(SPEC)
    assert main(["backtest", str(path), "--start", START, "--end", END, "--record"]) == 0
    out = capsys.readouterr().out
    exp_id = out.split("recorded experiment ")[1].split()[0]
    alone = research.backtest(path, START, END)  # the same run through the research API
    refits = [r for r in alone.targets.walk_forward.refits if r.model is not None]
    assert len(refits) >= 3, "the range should hold several refits"
    assert f"final equity {alone.final_equity:,.2f}" in out
    assert f"recorded {len(refits)} trained models (kind model)" in out

    with duckdb.connect(str(materialized), read_only=True) as con:
        bt = con.execute("SELECT * FROM experiments WHERE id = ?", [exp_id]).df()
        models = con.execute(  # the backtest's models: recorded with it, at its time
            "SELECT * FROM experiments WHERE kind = 'model' AND name = ? AND recorded_at = ? ORDER BY start",
            ["ridge_small", bt["recorded_at"].iloc[0]],
        ).df()
    assert list(bt["kind"]) == ["backtest"] and json.loads(bt["spec"].iloc[0])["signal"]["model"]["alpha"] == 0.5
    assert json.loads(bt["results"].iloc[0])["final_equity"] == alone.final_equity
    # One row per trained model, in refit order: its version, training range and the data it ran on.
    assert len(models) == len(refits) and models["id"].is_unique and exp_id not in set(models["id"])
    assert [json.loads(r)["model_version"] for r in models["results"]] == [r.model.version for r in refits]
    assert [json.loads(s)["refit_date"] for s in models["spec"]] == [str(r.refit.date()) for r in refits]
    assert list(models["start"]) == [pd.Timestamp(r.train_start) for r in refits]
    assert list(models["end"]) == [pd.Timestamp(r.train_end) for r in refits]
    assert all(
        pd.Timestamp(e) < pd.Timestamp(json.loads(s)["refit_date"]) for e, s in zip(models["end"], models["spec"])
    )
    assert set(models["data_version"]) == {bt["data_version"].iloc[0]}

    assert main(["experiments"]) == 0
    listed = capsys.readouterr().out
    assert exp_id in listed and listed.count("model    ridge_small") == len(refits)
    assert main(["experiment", "show", exp_id]) == 0
    shown = capsys.readouterr().out
    data_version = bt["data_version"].iloc[0]  # hashed over the training history too, as the re-run reads it
    assert "numbers match" in shown and f"data version: recorded {data_version}, now {data_version}" in shown
    code = main(["experiment", "show", models["id"].iloc[0]])
    captured = capsys.readouterr()
    assert code == 2 and "records one trained model" in captured.err and "Traceback" not in captured.err


def test_a_recorded_model_sweep_reruns_to_the_same_numbers(materialized, tmp_path, capsys):
    base = tmp_path / "ridge_small.yaml"
    base.write_text(SPEC)
    sweep = tmp_path / "ridge_alpha.yaml"
    sweep.write_text(
        f"name: ridge_alpha\nstrategy: {base}\ngrid:\n  signal.model.alpha: [0.5, 2.0]\n"
        "walk_forward: {start: 2024-02-01, end: 2024-04-30, folds: 2}\n"
    )
    assert main(["sweep", str(sweep)]) == 0
    exp_id = capsys.readouterr().out.split("recorded experiment ")[1].split()[0]
    with duckdb.connect(str(materialized), read_only=True) as con:
        data_version = con.execute("SELECT data_version FROM experiments WHERE id = ?", [exp_id]).fetchone()[0]
    assert main(["experiment", "show", exp_id]) == 0
    shown = capsys.readouterr().out
    assert "numbers match" in shown and f"data version: recorded {data_version}, now {data_version}" in shown
