"""A sweep in the warehouse: its rows of ``experiment_results`` (one per variant, replaced in one
transaction) and its run in ``experiments``, with what it takes to run it again
(``sweep_record`` / ``sweep_from_record``).
"""

from __future__ import annotations

import pandas as pd

from quantlab_assets.common.warehouse import append_rows_in_transaction, ensure_table, transaction
from quantlab_assets.research.api import ResearchData
from quantlab_assets.research.experiments import data_version, experiment_row, record
from quantlab_assets.research.schema import EXPERIMENT_RESULTS
from quantlab_assets.research.sweep_run import SweepResult
from quantlab_assets.research.sweep_spec import Fold, Sweep, Variant
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def results_for_storage(result: SweepResult, experiment_id: str, now: pd.Timestamp) -> pd.DataFrame:
    return result.results.assign(experiment_id=experiment_id, recorded_at=now)[EXPERIMENT_RESULTS.column_names]


def store_sweep(con, sweep: Sweep, result: SweepResult, data: ResearchData) -> tuple[str, pd.DataFrame]:
    """Replace the sweep's rows of ``experiment_results`` (one transaction) and record the run in
    ``experiments``; returns (experiment id, the stored rows)."""
    row = experiment_row(
        "sweep", sweep.name, sweep_record(sweep), sweep.start, sweep.end, data_version(data), sweep_results(result)
    )
    exp_id = str(row["id"].iloc[0])
    stored = results_for_storage(result, exp_id, row["recorded_at"].iloc[0])
    ensure_table(con, EXPERIMENT_RESULTS)
    with transaction(con):
        con.execute(f'DELETE FROM "{EXPERIMENT_RESULTS.name}" WHERE "sweep" = ?', [sweep.name])
        append_rows_in_transaction(con, EXPERIMENT_RESULTS, stored)
    con.unregister("_rows")
    record(con, row)
    return exp_id, stored


def sweep_record(sweep: Sweep) -> dict:
    """What ``experiments`` stores to run a sweep again (not the file: it may change)."""
    return {
        "name": sweep.name,
        "source": sweep.source,
        "description": sweep.description,
        "variants": [{"id": v.id, "params": v.params, "fields": v.raw} for v in sweep.variants],
        "folds": [
            {
                "in_sample": [str(f.in_sample[0].date()), str(f.in_sample[1].date())],
                "out_of_sample": [str(f.out_of_sample[0].date()), str(f.out_of_sample[1].date())],
            }
            for f in sweep.folds
        ],
    }


def sweep_from_record(record: dict) -> Sweep:
    variants = [
        Variant(v["id"], v["params"], StrategySpec.model_validate(v["fields"]), v["fields"]) for v in record["variants"]
    ]
    folds = [
        Fold(tuple(map(pd.Timestamp, f["in_sample"])), tuple(map(pd.Timestamp, f["out_of_sample"])))
        for f in record["folds"]
    ]
    return Sweep(record["name"], record["source"], record.get("description", ""), variants, folds)


def sweep_results(result: SweepResult) -> dict:
    """Headline numbers for ``experiments``: per variant IS/OOS Sharpe, and the statistics."""
    per = {
        r.variant: {"is_sharpe": float(r.is_sharpe), "oos_sharpe": float(r.oos_sharpe)}
        for r in result.results.itertuples()
    }
    return {"variants": per, "statistics": result.statistics}
