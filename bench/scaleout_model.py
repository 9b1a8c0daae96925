"""A model of the whole chain with S strategies on N workers, from measured per-step seconds.

    cd bench && python scaleout_model.py COSTS.json [--strategies 30,100] [--workers 8,32]

COSTS.json maps each step of one measured run to its seconds on a worker ({"step": seconds},
bench_scaleout.py --costs writes it: run + worker set-up, from the event log), plus "_overhead_s",
the per-step queue latency when a worker is free. The chain is simulated, not summed: the shared
steps (ohlcv, its gate, features, labels, feature_ic) in their dependency order, then per strategy
targets -> backtest -> (supervision, tearsheet), then the leaderboard after every backtest; a free
worker takes the ready step that was submitted first (Celery's queue). Each new strategy costs the
mean of the measured strategies' steps. Assumptions, stated in docs/scaling.md section 7: identical
workers with one step at a time each; the broker, PostgreSQL and the bucket are not saturated; no
commit conflicts between strategies (partitioned tables: measured 0); names and range as measured.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
from pathlib import Path

SHARED = {
    "ohlcv": [],
    "ohlcv_quality_gate": ["ohlcv"],
    "features": ["ohlcv_quality_gate"],
    "labels": ["ohlcv_quality_gate"],
    "feature_ic": ["features", "labels"],
}
PER_STRATEGY = {
    "targets": ["features"],
    "backtest": ["targets"],
    "supervision": ["backtest"],
    "tearsheet": ["backtest"],
}


def stage(step: str) -> str | None:
    """The per-strategy stage of a measured step key (``momentum_topk__backtest`` -> backtest)."""
    for name in PER_STRATEGY:
        if step.endswith(f"_{name}") or step.endswith(f"__{name}"):
            return name
    return None


def graph(costs: dict[str, float], strategies: int) -> dict[str, tuple[float, list[str]]]:
    """Step -> (seconds, upstream steps) for ``strategies`` strategies."""
    per_stage: dict[str, list[float]] = {name: [] for name in PER_STRATEGY}
    for step, seconds in costs.items():
        if (name := stage(step)) is not None:
            per_stage[name].append(seconds)
    mean = {name: statistics.mean(values) for name, values in per_stage.items()}
    steps = {step: (costs[step], ups) for step, ups in SHARED.items()}
    for i in range(strategies):
        for name, ups in PER_STRATEGY.items():
            own = [f"s{i}:{u}" if u in PER_STRATEGY else u for u in ups]
            steps[f"s{i}:{name}"] = (mean[name], own)
    steps["strategy_leaderboard"] = (costs["strategy_leaderboard"], [f"s{i}:backtest" for i in range(strategies)])
    return steps


def makespan(steps: dict[str, tuple[float, list[str]]], workers: int, overhead_s: float) -> float:
    """List scheduling on ``workers``: each ready step, in submission order, to the first free worker."""
    done_at: dict[str, float] = {}
    free = [0.0] * workers
    pending = dict(steps)
    order = 0
    ready: list[tuple[float, int, str]] = []
    while pending or ready:
        for step in [s for s, (_, ups) in pending.items() if all(u in done_at for u in ups)]:
            at = max((done_at[u] for u in pending[step][1]), default=0.0)
            heapq.heappush(ready, (at, order, step))
            order += 1
            del pending[step]
        at, _, step = heapq.heappop(ready)
        worker = min(range(workers), key=lambda w: free[w])
        start = max(at, free[worker]) + overhead_s
        free[worker] = start + steps[step][0]
        done_at[step] = free[worker]
    return max(done_at.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("costs", type=Path)
    parser.add_argument("--strategies", default="4,30,100")
    parser.add_argument("--workers", default="1,2,8,32")
    args = parser.parse_args()
    costs = json.loads(args.costs.read_text())
    overhead = float(costs.pop("_overhead_s", 0.0))
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{'strategies':>10} {'work s':>9} " + " ".join(f"{f'{n} workers':>11}" for n in counts))
    for s in (int(x) for x in args.strategies.split(",")):
        steps = graph(costs, s)
        work = sum(c for c, _ in steps.values()) + overhead * len(steps)
        cells = " ".join(f"{makespan(steps, n, overhead):9.0f} s" for n in counts)
        print(f"{s:>10} {work:9.0f} {cells}")


if __name__ == "__main__":
    main()
