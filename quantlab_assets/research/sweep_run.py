"""Running a sweep: every variant over the sweep's whole range on the shared arrays, then each
fold's in-sample and out-of-sample KPIs and the selection-bias statistics of ``overfitting``
(``SweepResult``). ``run_sweep_from_warehouse`` loads what the variants read first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.research.api import ResearchData, history_start, load_data
from quantlab_assets.research.overfitting import selection_statistics
from quantlab_assets.research.shared_arrays import KPIS, SharedArrays, period_kpis, run_variant
from quantlab_assets.research.sweep_spec import Sweep, sweep_features, sweep_history_from


@dataclass(frozen=True)
class SweepResult:
    results: pd.DataFrame  # EXPERIMENT_RESULTS columns but experiment_id and recorded_at
    statistics: list[dict]  # per fold: best variant, DSR, SR0, rank correlation
    returns: pd.DataFrame  # daily returns, sessions x variants


def estimate_line(sweep: Sweep, sessions: int, first_s: float) -> str:
    """What a sweep is about to cost: its size and, from the first variant's time, the rest's."""
    rest = first_s * (len(sweep.variants) - 1)
    return (
        f"sweep {sweep.name}: {len(sweep.variants):,} variants x {sessions:,} sessions; the first took "
        f"{first_s:.2f} s, the other {len(sweep.variants) - 1:,} about {rest:,.0f} s more"
    )


def run_sweep(sweep: Sweep, data: ResearchData, say: Callable[[str], None] | None = None) -> SweepResult:
    """Every variant over the sweep's whole range on the shared arrays. ``say`` gets one line with
    the size and the estimated time of the rest, after the first variant and before the others."""
    if any(history_start(v.spec, sweep.start) < data.features_from for v in sweep.variants):
        raise ValueError("the data do not reach back to a model variant's training window")
    shared = SharedArrays.build(data, sweep.start, sweep.end)
    runs: dict[str, dict[str, np.ndarray]] = {}
    for n, v in enumerate(sweep.variants):
        t0 = time.perf_counter()
        runs[v.id] = run_variant(shared, v.spec)
        if n == 0 and say is not None:
            say(estimate_line(sweep, len(shared.sessions), time.perf_counter() - t0))
    ids = [v.id for v in sweep.variants]
    ret = np.column_stack([runs[i]["ret"] for i in ids])
    per_fold, stats = [], []
    for fold in sweep.folds:
        is_k = period_kpis(ret, shared.sessions, fold.in_sample)
        oos_k = period_kpis(ret, shared.sessions, fold.out_of_sample)
        per_fold.append((is_k, oos_k))
        rows = (shared.sessions >= fold.in_sample[0]) & (shared.sessions <= fold.in_sample[1])
        st = selection_statistics(
            {i: ret[rows, j] for j, i in enumerate(ids)}, {i: float(oos_k["sharpe"][j]) for j, i in enumerate(ids)}
        )
        best = ids.index(st["best"]) if st["best"] else None
        stats.append(
            {
                "in_sample": [str(fold.in_sample[0].date()), str(fold.in_sample[1].date())],
                "out_of_sample": [str(fold.out_of_sample[0].date()), str(fold.out_of_sample[1].date())],
                **st,
                "best_oos_sharpe": float(oos_k["sharpe"][best]) if best is not None else float("nan"),
            }
        )
    frame = pd.DataFrame(
        {
            "sweep": sweep.name,
            "variant": ids,
            "params": [json.dumps(v.params, sort_keys=True, default=str) for v in sweep.variants],
            "spec_hash": [v.spec_hash for v in sweep.variants],
        }
    )
    for prefix, pick in (("is", 0), ("oos", 1)):
        for k in KPIS:
            frame[f"{prefix}_{k}"] = (
                np.nanmean(np.vstack([f[pick][k] for f in per_fold]), axis=0)
                if len(per_fold) > 1
                else per_fold[0][pick][k]
            )
    frame["turnover"] = [float(np.nanmean(runs[i]["turnover"])) for i in ids]
    frame["costs"] = [float(np.nansum(runs[i]["costs"])) for i in ids]
    frame["is_rank"] = frame["is_sharpe"].rank(ascending=False, method="first", na_option="bottom").astype(int)
    frame["folds"] = [
        json.dumps(
            [
                {"in_sample_sharpe": float(f[0]["sharpe"][j]), "out_of_sample_sharpe": float(f[1]["sharpe"][j])}
                for f in per_fold
            ]
        )
        for j in range(len(ids))
    ]
    return SweepResult(frame, stats, pd.DataFrame(ret, index=shared.sessions, columns=ids))


def load_sweep_data(sweep: Sweep, db=None):
    """Everything a sweep reads from the warehouse: its features over its range, the sessions
    before it that its variants' windows (and models' training) need, and labels for models."""
    return load_data(
        sweep.start,
        sweep.end,
        sweep_features(sweep),
        db=db,
        history_from=sweep_history_from(sweep),
        labels=any(v.spec.signal.kind == "model" for v in sweep.variants),
    )


def run_sweep_from_warehouse(sweep: Sweep, db=None, say: Callable[[str], None] | None = None) -> SweepResult:
    return run_sweep(sweep, load_sweep_data(sweep, db), say)
