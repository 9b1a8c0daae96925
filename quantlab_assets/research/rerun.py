"""Run a recorded experiment again and say whether the numbers still match.

Above both ``experiments`` (the table) and ``sweep_store`` (which records into it), so neither imports
the other from inside a function."""

from __future__ import annotations

import json

from quantlab_assets.research.api import backtest, history_start, load_data
from quantlab_assets.research.experiments import Experiment, backtest_results, data_version, differences
from quantlab_assets.research.sweep_run import load_sweep_data, run_sweep
from quantlab_assets.research.sweep_store import sweep_from_record, sweep_results
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def rerun(exp: Experiment, db=None) -> tuple[dict, str, list[str]]:
    """Run a recorded experiment again: (results now, data version now, differences)."""
    if exp.kind == "model":
        raise ValueError(
            f"experiment {exp.id} records one trained model; re-run the backtest or `quantlab models compare` "
            "that recorded it (the same spec and data give the same model_version)"
        )
    if exp.kind == "backtest":
        spec = StrategySpec.model_validate(exp.spec)
        data = load_data(
            exp.start,
            exp.end,
            spec.features_used(),
            db=db,
            history_from=history_start(spec, exp.start),  # a model trains on the sessions before start
            labels=spec.signal.kind == "model",
        )
        now = backtest_results(backtest(spec, exp.start, exp.end, data=data))
    else:
        sweep = sweep_from_record(exp.spec)
        data = load_sweep_data(sweep, db)
        now = sweep_results(run_sweep(sweep, data))
    now = json.loads(json.dumps(now, sort_keys=True))
    return now, data_version(data), differences(exp.results, now)
