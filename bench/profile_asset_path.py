"""Profile one strategy's 10-year asset-path backfill (targets, backtest, backtest_kpis) step by step.

Builds the same throwaway warehouse as ``bench_research.py`` (synthetic bars and features of
W symbols), then materializes the bench strategy's assets in this process under cProfile and
prints the wall time of each phase: definitions load, run (per step), and the top functions.

    python bench/profile_asset_path.py [--symbols 50] [--years 10] [--profile OUT.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_research import SPEC, build_warehouse

from quantlab_assets.common.calendar import shift_sessions, trading_days

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--profile", metavar="OUT", help="run under cProfile and write its stats here")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    start = trading_days("2015-01-02", "2015-01-31")[0]
    end = shift_sessions(start, args.years * 252 - 1)
    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    tmp = Path(tempfile.mkdtemp(prefix="quantlab-profile-"))
    db = tmp / "bench.duckdb"
    (tmp / "symbols.yaml").write_text(
        "universe: bench\nsymbols:\n"
        + "".join(f"  - {{symbol: {s}, sector: S{i % 8}}}\n" for i, s in enumerate(symbols))
    )
    (tmp / "strategies").mkdir()
    (tmp / "strategies" / "bench_momentum.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp / "home").mkdir()
    (tmp / "home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    os.environ.update(
        QUANTLAB_DB=str(db),
        QUANTLAB_SYMBOLS=str(tmp / "symbols.yaml"),
        QUANTLAB_STRATEGIES=str(tmp / "strategies"),
        QUANTLAB_ARTIFACTS=str(tmp / "artifacts"),
        DAGSTER_HOME=str(tmp / "home"),
        QUANTLAB_DATA_PROVIDER="synthetic",
        QUANTLAB_START_DATE=str(shift_sessions(start, -200).date()),
    )
    t0 = time.perf_counter()
    build_warehouse(db, symbols, start, end)
    print(f"warehouse: {args.symbols} symbols, {args.years} years, built in {time.perf_counter() - t0:.1f} s")

    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    import dagster as dg

    from quantlab_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    t_load = time.perf_counter() - t0
    keys = [dg.AssetKey(["bench_momentum", f"bench_momentum_{s}"]) for s in ("targets", "backtest", "backtest_kpis")]
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as inst:
        result = job.execute_in_process(
            instance=inst,
            asset_selection=keys,
            tags={
                "dagster/asset_partition_range_start": str(start.date()),
                "dagster/asset_partition_range_end": str(end.date()),
            },
        )
        t_run = time.perf_counter() - t0
        stats = inst.get_run_step_stats(result.run_id)
    if prof:
        prof.disable()
    assert result.success
    print(f"definitions load (imports + defs + job): {t_load:6.2f} s")
    print(f"execute_in_process                     : {t_run:6.2f} s")
    in_steps = 0.0
    for s in stats:
        in_steps += s.end_time - s.start_time
        print(f"  step {s.step_key:<45} {s.end_time - s.start_time:6.2f} s")
    print(f"  outside the steps (run creation, planned events, start/end): {t_run - in_steps:6.2f} s")
    if prof:
        prof.dump_stats(args.profile)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
