"""Sweeps: one base strategy, a grid of field paths -> values, and in-sample / out-of-sample
periods (one split or walk-forward folds). Every variant runs on the same loaded arrays with the
cores the assets call (``book_arrays`` for the targets, the engine's ``simulate`` kernel for the
book); the result is one row per variant with its in-sample and out-of-sample KPIs, turnover and
costs, and the selection-bias statistics of ``overfitting``.

A sweep file (``sweeps/<name>.yaml``)::

    name: momentum_grid
    strategy: strategies/momentum_topk.yaml      # a file (from the project root) or a mapping
    grid:
      selection.k: [5, 10, 20]
      signal.feature: [mom_12_1, ret_60]
    in_sample: {start: 2015-01-02, end: 2020-12-31}
    out_of_sample: {start: 2021-01-04, end: 2024-12-31}
    # or, instead of the two periods:
    # walk_forward: {start: 2015-01-02, end: 2024-12-31, folds: 4}

Walk-forward cuts [start, end] into folds + 1 equal blocks of sessions; fold i is in-sample on
blocks 0..i (expanding) and out-of-sample on block i+1. A variant runs once over the whole
range (its parameters are what the in-sample period selects; nothing is fitted), and each
period's KPIs are those of its sessions' returns.

This module is the public API of the sweeps; the code lives by concern: ``sweep_spec`` (the file's
schema, ``load_sweep``, variants and folds), ``shared_arrays`` (the arrays the variants share, one
variant's run), ``sweep_run`` (``run_sweep``), ``sweep_store`` (``experiment_results`` and the
``experiments`` record), ``sweep_report`` (the leaderboard, ``promote``) and ``fast_path``
(``evaluate``, the notebook loop's fast path on the same shared arrays).
"""

from __future__ import annotations

from quantlab_assets.research.fast_path import Evaluation, evaluate
from quantlab_assets.research.shared_arrays import KPIS, SharedArrays, period_kpis, run_variant
from quantlab_assets.research.sweep_report import leaderboard_markdown, promote
from quantlab_assets.research.sweep_run import SweepResult, estimate_line, run_sweep, run_sweep_from_warehouse
from quantlab_assets.research.sweep_spec import (
    SWEEPS_DIR,
    Fold,
    Period,
    Sweep,
    SweepError,
    SweepFile,
    Variant,
    WalkForward,
    check_size,
    find_sweep,
    load_sweep,
    sweep_features,
    sweep_history_from,
)
from quantlab_assets.research.sweep_store import (
    EXPERIMENT_RESULTS,
    results_for_storage,
    store_sweep,
    sweep_from_record,
    sweep_record,
    sweep_results,
)

__all__ = [
    "EXPERIMENT_RESULTS",
    "KPIS",
    "SWEEPS_DIR",
    "Evaluation",
    "Fold",
    "Period",
    "SharedArrays",
    "Sweep",
    "SweepError",
    "SweepFile",
    "SweepResult",
    "Variant",
    "WalkForward",
    "check_size",
    "estimate_line",
    "evaluate",
    "find_sweep",
    "leaderboard_markdown",
    "load_sweep",
    "period_kpis",
    "promote",
    "results_for_storage",
    "run_sweep",
    "run_sweep_from_warehouse",
    "run_variant",
    "store_sweep",
    "sweep_features",
    "sweep_from_record",
    "sweep_history_from",
    "sweep_record",
    "sweep_results",
]
