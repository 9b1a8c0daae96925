"""The whole chain in process on the DuckDB file vs on N Celery workers with the Delta warehouse on
a local S3 stand-in, on this machine, side by side, with where the time goes (issue 27).

    cd bench && python bench_scaleout.py [--symbols 500] [--years 2] [--workers 2] [--keep DIR]

Both set-ups materialize ``ohlcv*`` over the same range with the same generated registry. The
Celery set-up is celery_cluster.py's: PostgreSQL (``DAGSTER_PG_*``, else a private server started
by scripts/postgres.sh), Redis (scripts/redis.sh), moto on 127.0.0.1, each worker in its own
directory. Printed:

* wall, and the summed step seconds of each set-up;
* per step: its seconds in process, and on the workers split into queue wait (broker and waiting
  for a free worker), set-up in the worker (loading the code, planning) and run (reads, compute,
  writes, commits), from the run's event log (quantlab_assets/batch_orchestrator/worker_timeline.py);
* the Delta costs apart: opening a session (listing and registering every table), reading one
  strategy's targets, and one slice commit, next to the same slice's replace on a DuckDB file
  (on scratch tables, never a contract: nothing writes a contract around its audit);
* whether the two warehouses hold the same rows (compare_warehouses.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import bench_chain
import celery_cluster
import compare_warehouses
import dagster as dg
import scaleout_model

from quantlab_assets.batch_orchestrator.worker_timeline import overlaps, render, step_timeline, summary
from quantlab_assets.common import warehouse
from quantlab_assets.common.warehouse import Column, TableSchema

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = TableSchema(
    name="bench_scratch",
    columns=(
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("date", "DATE", False),
        Column("weight", "DOUBLE"),
    ),
)
COMMITS = 5


def _postgres(stack: ExitStack, tmp: Path) -> None:
    if os.environ.get("DAGSTER_PG_HOST"):
        return
    script = str(ROOT / "scripts" / "postgres.sh")
    subprocess.run(["bash", script, "install"], check=True, timeout=900)
    subprocess.run(["bash", script, "start", str(tmp / "pg")], check=True, timeout=300)
    stack.callback(subprocess.run, ["bash", script, "stop", str(tmp / "pg")], timeout=300)
    for line in (tmp / "pg" / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        os.environ[key] = value


def _timeline(home: Path) -> list:
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_runs(limit=1)[0]
            return step_timeline(instance, run.run_id)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def _slice(names: int):
    import pandas as pd

    return pd.DataFrame(
        {
            "strategy": "s",
            "symbol": [f"G{i:04d}" for i in range(names)],
            "date": pd.Timestamp("2024-06-03"),
            "weight": 0.1,
        }
    )


def delta_costs(cluster: celery_cluster.Cluster, tmp: Path, names: int) -> dict[str, float]:
    """Seconds of a session open, a targets read, a slice commit (Delta on S3 vs the DuckDB file)."""
    from quantlab_assets.common import delta_store, settings
    from quantlab_assets.strategy_lab.core.schema import TARGETS

    saved = {k: os.environ.get(k) for k in cluster.env}
    os.environ.update(cluster.env)
    try:
        store = delta_store.DeltaStore.from_settings()
        t0 = time.perf_counter()
        session = delta_store.DeltaSession(store)
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = len(warehouse.read_strategy_slice(session, TARGETS, "momentum_topk", "2000-01-01", "2100-01-01"))
        read_s = time.perf_counter() - t0
        session.close()
        scratch = delta_store.DeltaStore(
            settings.delta_url().rsplit("/", 1)[0] + "/bench_scratch", settings.delta_storage_options()
        )
        s = delta_store.DeltaSession(scratch)
        frame = _slice(names)
        delta = []
        for _ in range(COMMITS + 1):
            t0 = time.perf_counter()
            warehouse.replace_strategy_slice(s, SCRATCH, frame, "s", "2024-06-03", "2024-06-03")
            delta.append(time.perf_counter() - t0)
        s.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    con = warehouse.connect(tmp / "scratch.duckdb")
    duck = []
    for _ in range(COMMITS + 1):
        t0 = time.perf_counter()
        warehouse.replace_strategy_slice(con, SCRATCH, frame, "s", "2024-06-03", "2024-06-03")
        duck.append(time.perf_counter() - t0)
    con.close()
    return {
        "open_s": open_s,
        "read_s": read_s,
        "read_rows": float(rows),
        "delta_commit_s": statistics.median(delta[1:]),  # the first creates the table
        "duckdb_replace_s": statistics.median(duck[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep both runs' directories under DIR")
    args = parser.parse_args()
    first, last = bench_chain.years_range(args.years)
    with ExitStack() as stack:
        tmp = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quantlab-scaleout-")))
        tmp.mkdir(parents=True, exist_ok=True)
        title = f"{args.symbols} names, {first}...{last} ({args.years} years), synthetic provider"
        bench_chain.say(
            f"# whole chain (ohlcv*), one run, {title}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        )
        local_env = bench_chain.lab_env(tmp / "in_process", args.symbols, None)
        local = bench_chain.materialize(local_env, f"{first}...{last}")
        local_spans = {s.step: s for s in _timeline(Path(local_env["DAGSTER_HOME"]))}
        bench_chain.say(bench_chain.summary("in process, DuckDB file", local))

        _postgres(stack, tmp)
        symbols = Path(local_env["QUANTLAB_SYMBOLS"])
        cluster = stack.enter_context(celery_cluster.local_cluster(tmp / "celery", args.workers, symbols))
        t0 = time.perf_counter()
        done = cluster.materialize(celery_cluster.chain_selection(), first, last)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"the Celery run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        spans = _timeline(tmp / "celery" / "launcher" / "dagster_home")
        s = summary(spans, wall)
        label = f"{args.workers} Celery workers, Delta/S3"
        bench_chain.say(
            f"{label:<26} wall {wall:7.1f} s  steps {s['run_s']:7.1f} s  (queued {s['queued_s']:.1f} s, "
            f"worker set-up {s['setup_s']:.1f} s summed over {int(s['steps'])} steps; "
            f"{len(overlaps(spans))} pairs of steps ran at once on different workers)",
            "",
            f"{'step':<52} {'in-proc s':>9} {'celery s':>9} {'queued':>7} {'set-up':>7}  worker",
        )
        for span in spans:
            mine = local_spans.get(span.step)
            inproc = f"{mine.run_s:9.2f}" if mine else f"{'-':>9}"
            bench_chain.say(
                f"{span.step:<52} {inproc} {span.run_s:9.2f} {span.queued_s:7.2f} {span.setup_s:7.2f}  {span.worker}"
            )
        model_costs = {span.step: span.setup_s + span.run_s for span in spans}
        model_costs["_overhead_s"] = statistics.quantiles([span.queued_s for span in spans], n=10)[0]
        (tmp / "costs.json").write_text(json.dumps(model_costs, indent=1))
        bench_chain.say("", f"model (scaleout_model.py {tmp / 'costs.json'}): seconds of the chain")
        for strategies in (4, 30, 100):
            steps = scaleout_model.graph(dict(model_costs), strategies)
            cells = [scaleout_model.makespan(steps, n, model_costs["_overhead_s"]) for n in (2, 8, 32)]
            bench_chain.say(
                f"  {strategies:>3} strategies on 2 / 8 / 32 workers: " + " / ".join(f"{c:.0f} s" for c in cells)
            )
        costs = delta_costs(cluster, tmp, args.symbols)
        bench_chain.say(
            "",
            f"Delta on S3 (moto): session open {costs['open_s']:.3f} s (list + register every table); "
            f"read one strategy's targets {costs['read_s']:.3f} s ({int(costs['read_rows'])} rows); "
            f"one {args.symbols}-row slice commit {costs['delta_commit_s']:.3f} s (median of {COMMITS}) vs "
            f"{costs['duckdb_replace_s']:.3f} s for the same replace on a DuckDB file",
            "",
            "timeline of the Celery run:",
            render(spans),
            "",
            f"stored rows: python bench/compare_warehouses.py {local_env['QUANTLAB_DB']} {cluster.delta_url}",
        )
        for key, value in cluster.env.items():
            os.environ[key] = value
        same = compare_warehouses.compare(local_env["QUANTLAB_DB"], cluster.delta_url)
        bench_chain.say(f"same rows, table for table: {same}")


if __name__ == "__main__":
    main()
