"""bench/scaleout_model.py on hand-worked schedules: one worker sums the work, enough workers give
the critical path, and per-step overhead is paid once per step on each worker's timeline."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scaleout_model  # noqa: E402  (bench/ is scripts, not a package)

UNIT = {
    "ohlcv": 1.0,
    "ohlcv_quality_gate": 1.0,
    "features": 1.0,
    "labels": 1.0,
    "feature_ic": 1.0,
    "a__a_targets": 1.0,
    "a__backtest": 1.0,
    "a__supervision": 1.0,
    "a__a_tearsheet": 1.0,
    "b__b_targets": 3.0,  # a second measured strategy: new strategies cost the mean, 2 s
    "b__backtest": 3.0,
    "b__supervision": 3.0,
    "b__b_tearsheet": 3.0,
    "strategy_leaderboard": 1.0,
}


def test_one_worker_runs_everything_in_turn():
    steps = scaleout_model.graph(UNIT, 1)
    assert len(steps) == 5 + 4 + 1
    assert scaleout_model.makespan(steps, 1, 0.0) == 5 + 4 * 2.0 + 1
    assert scaleout_model.makespan(steps, 1, 0.5) == 5 + 4 * 2.0 + 1 + 10 * 0.5


def test_many_workers_give_the_critical_path():
    # ohlcv, gate, features, targets (2), backtest (2), then supervision/tearsheet (2) in parallel
    steps = scaleout_model.graph(UNIT, 3)
    assert scaleout_model.makespan(steps, 64, 0.0) == 1 + 1 + 1 + 2 + 2 + 2


def test_two_workers_split_independent_strategies():
    steps = scaleout_model.graph(UNIT, 2)
    one, two = scaleout_model.makespan(steps, 1, 0.0), scaleout_model.makespan(steps, 2, 0.0)
    assert one == 5 + 2 * 8 + 1 and two < one and two >= one / 2
