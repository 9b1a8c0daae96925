"""The sweep asset writes experiment_results (= run_sweep) and records the experiment; the CLI
backtests, records, lists and re-runs experiments, and promotes a variant."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from quantlab_assets import research
from quantlab_assets.batch_orchestrator.cli import main
from quantlab_assets.definitions import defs
from quantlab_assets.research.assets import build_sweep_asset
from quantlab_assets.research.sweep import load_sweep, run_sweep
from quantlab_assets.strategy_lab.core.spec import load_strategy
from quantlab_assets_tests.research.conftest import END, ROOT, START


def _sweep_file(tmp_path):
    path = tmp_path / "lowvol_k.yaml"
    path.write_text(
        f"name: lowvol_k\nstrategy: {ROOT / 'strategies' / 'low_volatility.yaml'}\n"
        "grid:\n  selection.k: [10, 15]\n  rebalance.frequency: [weekly, monthly]\n"
        "walk_forward: {start: 2024-02-01, end: 2024-04-30, folds: 2}\n"
    )
    return path


def test_sweep_asset_writes_results_and_records_the_experiment(materialized, tmp_path, capsys):
    sweep = load_sweep(_sweep_file(tmp_path))
    assert len(sweep.folds) == 2 and sweep.folds[0].out_of_sample[0] > sweep.folds[0].in_sample[1]
    asset = build_sweep_asset(sweep)
    result = dg.materialize([asset], resources=defs.resources)
    assert result.success
    meta = result.asset_materializations_for_node(asset.op.name)[0].metadata
    with duckdb.connect(str(materialized), read_only=True) as con:
        stored = con.execute("SELECT * FROM experiment_results WHERE sweep = 'lowvol_k' ORDER BY variant").df()
        exp = con.execute("SELECT * FROM experiments WHERE id = ?", [meta["experiment_id"].value]).df()
    expected = run_sweep(sweep, research.load_data(sweep.start, sweep.end, db=materialized)).results
    assert list(stored["variant"]) == list(expected["variant"]) and len(exp) == 1
    for col in ("is_sharpe", "oos_sharpe", "turnover", "costs"):
        np.testing.assert_array_equal(stored[col].to_numpy(), expected[col].to_numpy())
    # The recorded sweep re-runs to the same numbers.
    assert main(["experiment", "show", meta["experiment_id"].value]) == 0
    assert "numbers match" in capsys.readouterr().out


def test_cli_backtest_records_and_experiment_show_matches(materialized, capsys):
    code = main(
        [
            "backtest",
            str(ROOT / "strategies" / "low_volatility.yaml"),
            "--start",
            START,
            "--end",
            END,
            "--set",
            "selection.k=12",
            "--record",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "low_volatility" in out and "sharpe_ratio" in out
    alone = research.backtest(ROOT / "strategies" / "low_volatility.yaml", START, END, overrides=["selection.k=12"])
    assert f"final equity {alone.final_equity:,.2f}" in out
    exp_id = out.split("recorded experiment ")[1].split()[0]
    assert main(["experiments"]) == 0 and exp_id in capsys.readouterr().out
    assert main(["experiment", "show", exp_id]) == 0
    assert "numbers match" in capsys.readouterr().out


def test_cli_backtest_bad_override_names_the_field(materialized, capsys):
    code = main(
        [
            "backtest",
            str(ROOT / "strategies" / "low_volatility.yaml"),
            "--start",
            START,
            "--end",
            END,
            "--set",
            "selection.k=abc",
        ]
    )
    assert code == 2 and "'selection.k'" in capsys.readouterr().err


def test_cli_promote(tmp_path, capsys):
    out = tmp_path / "lowvol_pick.yaml"
    assert main(["promote", str(_sweep_file(tmp_path)), "v001", "--out", str(out)]) == 0
    spec = load_strategy(out)
    assert spec.name == "lowvol_pick" and spec.rebalance.frequency == "monthly" and spec.selection.k == 10
    assert pd.notna(spec.costs.fee_bps)


def test_cli_sweep_prints_the_leaderboard(materialized, tmp_path, capsys):
    assert main(["sweep", str(_sweep_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "Sweep lowvol_k: 4 variants" in out and "deflated Sharpe ratio" in out and out.count("| v00") == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstrategy: strategies/low_volatility.yaml\ngrid: {selection.k: []}\n"
        "walk_forward: {start: 2024-02-01, end: 2024-04-30, folds: 2}\n"
    )
    assert main(["sweep", str(bad)]) == 2 and "grid.selection.k" in capsys.readouterr().err
