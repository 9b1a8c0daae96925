"""Research benchmark: one strategy variant and a 100-variant sweep over W symbols x Y years of
stored features, next to the asset path for the same spec, measured in the same run.

Builds a throwaway warehouse (synthetic bars -> ``ohlcv``, the preset's features -> ``features``)
in a temporary directory, then times:

* ``research.load_data`` (the warehouse reads, one read-only connection);
* ``research.evaluate`` on the loaded data (targets + the engine's kernel + KPIs; the notebook
  loop's fast path) and ``research.backtest`` (the same plus every frame the assets store);
* the per-session targets implementation that the vectorised one replaced, for the same spec
  (``quantlab_assets_tests/strategy_lab/reference_targets.py``; skipped with --no-reference);
* the asset path: ``<strategy>/<strategy>_targets`` and ``_backtest`` materialized over the same
  range by Dagster in a subprocess (skipped with --no-assets);
* vectorbt's ``Portfolio.from_orders(size_type='targetpercent')`` on the same decided targets,
  adjusted open fills, adjusted close marks and costs, under ``--vectorbt-python`` (a separate
  venv with pandas 3; ``bench/vbt_baseline.py``), with its final equity's difference to ours;
* a sweep of 100 variants on the shared arrays, after and including the reads.

    python bench/bench_research.py [--symbols 500] [--years 10] [--variants 100] [--no-assets]
        [--vectorbt-python /tmp/vbt/bin/python]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from vbt_baseline import run_in as run_vectorbt_in

from quantlab_assets import research
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.warehouse import connect, replace_slice
from quantlab_assets.data_curator.core.step import audit_and_publish_ohlcv
from quantlab_assets.data_curator.core.store import ohlcv_rows
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core.features import compute_features, load_preset
from quantlab_assets.feature_store.core.schema import features_schema
from quantlab_assets.research.api import decisions_of
from quantlab_assets.research.sweep import load_sweep, run_sweep, sweep_features

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = {
    "name": "bench_momentum",
    "description": "top 50 by 60-day return, weekly",
    "signal": {"kind": "feature", "feature": "ret_60"},
    "selection": {"kind": "top_k", "k": 50},
    "rebalance": {"frequency": "weekly"},
    "constraints": {"max_weight": 0.05, "gross_exposure": 1.0, "net_exposure": 1.0, "min_names": 20},
    "costs": {"fee_bps": 1.0, "slippage_bps": 5.0},
}


def build_warehouse(db: Path, symbols: list[str], start, end) -> None:
    first = shift_sessions(start, -130)
    fetched = SyntheticProvider().fetch(symbols, first.date(), pd.Timestamp(end).date())
    feats = compute_features(fetched.bars, load_preset(), start, end)
    now = datetime.now()
    with connect(db) as con:  # ohlcv through its one write path, the audited publish
        rows = ohlcv_rows(fetched, "synthetic", "bench", now)
        published = audit_and_publish_ohlcv(con, rows, fetched, symbols, first, end, "synthetic", "bench", now)
        assert not published.refused, published.refused
        replace_slice(con, features_schema(load_preset()), feats, start, end)


def timed(fn, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def asset_path(tmp: Path, env: dict, start, end, code_root: Path | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of materializing the spec's targets and backtest assets over [start, end]
    as one single-run backfill in a fresh process. ``code_root``: a checkout of another commit whose
    ``quantlab_assets`` is imported instead (PYTHONPATH wins over the editable install), same venv.
    The CPU time (user + system of the child) is the steadier figure on a shared machine."""
    code = (
        "import dagster as dg, sys\n"
        "from quantlab_assets.definitions import defs\n"
        "job = defs.resolve_implicit_global_asset_job_def()\n"
        "keys = [dg.AssetKey(['bench_momentum', 'bench_momentum_targets']),\n"
        "        dg.AssetKey(['bench_momentum', 'bench_momentum_backtest']),\n"
        "        dg.AssetKey(['bench_momentum', 'bench_momentum_backtest_kpis'])]\n"
        "with dg.DagsterInstance.get() as inst:\n"
        f"    r = job.execute_in_process(instance=inst, asset_selection=keys, tags={{"
        f"'dagster/asset_partition_range_start': '{start}', 'dagster/asset_partition_range_end': '{end}'}})\n"
        "sys.exit(0 if r.success else 1)\n"
    )
    if code_root is not None:
        env = {**env, "PYTHONPATH": str(code_root)}
        # A fresh DAGSTER_HOME per code version; the warehouse is shared (each run replaces its slices).
        home = tmp / f"home-{code_root.name}"
        home.mkdir(exist_ok=True)
        (home / "dagster.yaml").write_text((code_root / "dagster.yaml").read_text())
        env["DAGSTER_HOME"] = str(home)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=code_root or ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        print(out.stderr[-3000:])
        raise SystemExit("asset path failed")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def print_asset_rows(args, tmp: Path, env: dict, start, end) -> None:
    """The asset path of this tree (and of ``--baseline``), alternating, best of ``--asset-runs``."""
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline:
        trees.insert(0, (f"baseline {args.baseline.name}", args.baseline.resolve()))
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.asset_runs):
        for label, root in trees:
            wall, cpu = asset_path(tmp, env, str(start.date()), str(end.date()), root)
            if label not in best or wall < best[label][0]:
                best[label] = (wall, cpu)
    print(
        f"asset path: targets + backtest + backtest_kpis of one strategy materialized as one single-run "
        f"backfill (Dagster, fresh process; best of {args.asset_runs})"
    )
    for label, (wall, cpu) in best.items():
        print(f"  {label:<28} wall {wall:7.2f} s   CPU {cpu:7.2f} s")
    if args.baseline:
        (bw, bc), (nw, nc) = best[trees[0][0]], best["this tree"]
        print(f"  ratio baseline / this tree: wall {bw / nw:.2f}x, CPU {bc / nc:.2f}x")
    print()


def vectorbt_inputs(data, out, start, end):
    """The engine's inputs as wide sessions x symbols arrays: adjusted open (fills), adjusted
    close (marks) and the decided weights shifted to their fill session (NaN: no order)."""
    bars = data.bars[data.bars["symbol"].isin(out.universe)]
    bars = bars[(bars["date"] >= start) & (bars["date"] <= end)].assign(
        adj_open=lambda b: b["open"] * b["adj_close"] / b["close"]
    )
    open_ = bars.pivot(index="date", columns="symbol", values="adj_open").sort_index()
    close = bars.pivot(index="date", columns="symbol", values="adj_close").reindex_like(open_)
    decisions = decisions_of(out.targets.targets)
    decisions = decisions[(decisions["date"] >= start) & (decisions["date"] <= end)]
    wide = decisions.pivot(index="date", columns="symbol", values="weight").reindex(columns=open_.columns)
    wide = wide.fillna(0.0).reindex(open_.index)  # a decided session: absent names go to 0
    sizes = wide.shift(1)  # decided at close t, filled at open t+1
    return open_.to_numpy(), close.to_numpy(), sizes.to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--no-assets", action="store_true", help="skip the Dagster asset path baseline")
    parser.add_argument("--no-reference", action="store_true", help="skip the per-session targets baseline")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="a checkout of the baseline commit (git archive COMMIT | tar -x -C DIR): its asset path is "
        "timed in the same run, alternating with this tree's",
    )
    parser.add_argument("--asset-runs", type=int, default=1, help="asset-path runs per code version (best shown)")
    parser.add_argument("--assets-only", action="store_true", help="only the asset path (and its baseline)")
    parser.add_argument(
        "--vectorbt-python",
        metavar="PATH",
        help="python of a separate venv with vectorbt 1.2 (pandas 3) for the vectorbt baseline; skipped if not given",
    )
    args = parser.parse_args()
    start = trading_days("2015-01-02", "2015-01-31")[0]
    end = shift_sessions(start, args.years * 252 - 1)
    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        db = tmp / "bench.duckdb"
        registry = tmp / "symbols.yaml"
        registry.write_text(
            "universe: bench\nsymbols:\n"
            + "".join(f"  - {{symbol: {s}, sector: S{i % 8}}}\n" for i, s in enumerate(symbols))
        )
        strategies = tmp / "strategies"
        strategies.mkdir()
        (strategies / "bench_momentum.yaml").write_text(yaml.safe_dump(SPEC))
        env = {
            **os.environ,
            "QUANTLAB_DB": str(db),
            "QUANTLAB_SYMBOLS": str(registry),
            "QUANTLAB_STRATEGIES": str(strategies),
            "QUANTLAB_ARTIFACTS": str(tmp / "artifacts"),
            "DAGSTER_HOME": str(tmp / "home"),
            "QUANTLAB_DATA_PROVIDER": "synthetic",
            "QUANTLAB_START_DATE": str(shift_sessions(start, -200).date()),
        }
        (tmp / "home").mkdir()
        (tmp / "home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        os.environ.update({k: env[k] for k in ("QUANTLAB_DB", "QUANTLAB_SYMBOLS")})
        _, setup = timed(lambda: build_warehouse(db, symbols, start, end))
        n_sessions = len(trading_days(start, end))
        print(
            f"# research bench: {args.symbols} symbols x {n_sessions} sessions ({args.years} years), "
            f"spec top-50 weekly on ret_60 (warehouse built in {setup:.1f} s)\n"
        )

        rows: list[tuple[str, float]] = []
        if args.assets_only:
            print_asset_rows(args, tmp, env, start, end)
            return
        research.backtest(SPEC, start, start + pd.Timedelta(days=40))  # compile the kernels once
        data, t_read = timed(lambda: research.load_data(start, end, ["ret_60"], labels=False), repeat=3)
        out, t_compute = timed(lambda: research.backtest(SPEC, start, end, data=data), repeat=3)
        _, t_total = timed(lambda: research.backtest(SPEC, start, end), repeat=3)
        spec = research.load_spec(SPEC)
        _, t_targets = timed(
            lambda: research.api.compute_targets(data.features, spec, data.universe(spec), start, end), repeat=3
        )
        t0 = time.perf_counter()
        research.evaluate(SPEC, data)  # the first call builds the shared price and feature arrays
        t_first = time.perf_counter() - t0
        _, t_eval = timed(lambda: research.evaluate(SPEC, data), repeat=3)
        rows += [
            ("research.load_data (reads)", t_read),
            ("research.evaluate, arrays loaded (targets + engine kernel + KPIs)", t_eval),
            ("research.evaluate, first call (builds the shared arrays)", t_first),
            ("research.evaluate with its reads (load_data + first call)", t_read + t_first),
            ("research.backtest on loaded data (all frames: positions, trades, states)", t_compute),
            ("  of which targets (vectorised)", t_targets),
            ("research.backtest with its reads", t_total),
        ]
        if not args.no_reference:
            sys.path.insert(0, str(ROOT))
            from quantlab_assets_tests.strategy_lab import reference_targets as ref

            old, t_old = timed(lambda: ref.compute_targets(data.features, spec, data.universe(spec), start, end))
            same = old.targets.equals(out.targets.targets)
            rows.append((f"baseline: per-session targets (same output: {same})", t_old))
        if not args.no_assets:
            print_asset_rows(args, tmp, env, start, end)
        vbt_note = "vectorbt baseline skipped (give --vectorbt-python PATH of a venv with vectorbt)"
        if args.vectorbt_python:
            open_, close, sizes = vectorbt_inputs(data, out, start, end)
            costs = spec.costs.fee_bps + spec.costs.slippage_bps
            vbt = run_vectorbt_in(args.vectorbt_python, open_, close, sizes, costs / 1e4, spec.capital, tmp)
            if isinstance(vbt, str):
                vbt_note = f"vectorbt baseline skipped: {vbt}"
            else:
                rel = abs(vbt["equity"] - out.final_equity) / abs(out.final_equity)
                vbt_note = (
                    f"vectorbt {vbt['version']} (pandas {vbt['pandas']}) final equity {vbt['equity']:,.2f}, "
                    f"relative difference to the engine {rel:.1e}; its first call "
                    f"{vbt['first_seconds']:.3f} s includes numba compilation"
                )
                rows.append(
                    (
                        f"baseline: vectorbt from_orders(targetpercent), same targets (equity rel. diff {rel:.1e})",
                        vbt["seconds"],
                    )
                )

        sweep_path = tmp / "bench_sweep.yaml"
        ks = [10, 20, 30, 40, 50][: max(1, args.variants // 20)]
        feats = ["ret_60", "ret_120", "ret_20", "mom_12_1", "vol_60"][: max(1, min(5, args.variants // len(ks) // 4))]
        rebal = ["weekly", "monthly"]
        bps = [2.0, 5.0]
        split = shift_sessions(start, int(n_sessions * 0.7))
        base = {**SPEC, "constraints": {**SPEC["constraints"], "max_weight": 0.1, "min_names": 10}}
        sweep_path.write_text(
            yaml.safe_dump(
                {
                    "name": "bench_sweep",
                    "strategy": base,
                    "grid": {
                        "selection.k": ks,
                        "signal.feature": feats,
                        "rebalance.frequency": rebal,
                        "costs.slippage_bps": bps,
                    },
                    "in_sample": {"start": start.date(), "end": split.date()},
                    "out_of_sample": {"start": shift_sessions(split, 1).date(), "end": end.date()},
                }
            )
        )
        sweep = load_sweep(sweep_path)
        t0 = time.perf_counter()
        sdata = research.load_data(start, end, sweep_features(sweep), labels=False)
        t_sread = time.perf_counter() - t0
        result, t_sweep = timed(lambda: run_sweep(sweep, sdata))
        rows += [
            (f"sweep: {len(sweep.variants)} variants on shared arrays (compute)", t_sweep),
            (f"sweep: {len(sweep.variants)} variants with its reads", t_sweep + t_sread),
        ]
        width = max(len(r[0]) for r in rows)
        for label, secs in rows:
            print(f"{label:<{width}}  {secs:8.3f} s")
        print(
            f"\nfinal equity {out.final_equity:,.2f}; sweep best in-sample {result.statistics[0]['best']}, "
            f"DSR {result.statistics[0]['dsr']:.3f}, IS/OOS rank correlation {result.statistics[0]['rank_corr']:.3f}"
        )
        print(vbt_note)
        print(
            f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, numpy {np.__version__}, "
            f"pandas {pd.__version__}"
        )


if __name__ == "__main__":
    main()
