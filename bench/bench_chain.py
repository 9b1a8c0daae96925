"""The whole chain at W generated names: this tree next to a baseline commit, and issue 16's scale goals.

Every run materializes ``ohlcv*`` (every partitioned asset, the repository's strategies) with the
synthetic provider and a generated registry of W names, in a fresh DAGSTER_HOME and warehouse,
through the same ``dagster asset materialize`` command as ``run_all.py``; wall time, process CPU
time and peak RSS come from ``/usr/bin/time``, each step's seconds from the run's log.

    cd bench && python bench_chain.py [--symbols 500] [--years 2] [--baseline DIR] [--keep DIR]
        # Y-year backfill as one run, side by side with DIR's code (``git archive COMMIT | tar -x -C
        # DIR``; its quantlab_assets is imported through PYTHONPATH from the same venv, so only the
        # code differs), then per step: the step's seconds vs its core compute alone (bench_cores.py,
        # on this tree's warehouse, same range; --no-cores skips it)
    python bench_chain.py --no-chain --scaling [--names 50,500,2000] [--years-list 2,5,10]
        # this tree's wall, CPU and peak RSS per cell, and how each grows with names and with years
    python bench_chain.py --no-chain --daily [--daily-names 50,500]
        # one daily partition of the whole chain after a 1-year backfill, at each size, and the ratio
    python bench_chain.py --no-chain --executors [--symbols 500] [--years 2]
        # the in-process executor vs the multiprocess one (2 at once) with a concurrency pool that
        # lets one step at a time use the warehouse (chain_executor.py), and without the pool

The parts combine in one invocation; ``--keep DIR`` keeps every run's directory (warehouse,
DAGSTER_HOME, artifacts) under DIR instead of a temporary one.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from run_all import DAGSTER, ROOT, run, steps

from quantlab_assets.common.calendar import shift_sessions, trading_days

HERE = Path(__file__).resolve().parent
DEFINITIONS = ["-m", "quantlab_assets.definitions"]


def pooled(instance: str) -> str:
    """The instance config with one step at a time per concurrency pool. Dagster refuses a
    ``concurrency:`` section beside the run coordinator's ``max_concurrent_runs``, so that limit
    moves into it."""
    runs = re.search(r"^  config:\n    max_concurrent_runs: (\d+)\n", instance, flags=re.M)
    assert runs, "dagster.yaml's run coordinator has no max_concurrent_runs any more: adapt pooled()"
    instance = instance.replace(runs.group(0), "")
    return instance + (
        f"\nconcurrency:\n  runs:\n    max_concurrent_runs: {runs.group(1)}\n"
        "  pools:\n    granularity: op\n    default_limit: 1\n"
    )


def registry(path: Path, n: int) -> Path:
    path.write_text(
        "universe: generated\nsymbols:\n" + "".join(f"  - {{symbol: G{i:04d}, sector: S{i % 11}}}\n" for i in range(n))
    )
    return path


def lab_env(tmp: Path, names: int, code_root: Path | None, instance: Callable[[str], str] | None = None) -> dict:
    """A fresh run directory (DAGSTER_HOME, warehouse, artifacts, registry) and its environment;
    ``instance`` rewrites the tree's dagster.yaml for the run."""
    tmp.mkdir(parents=True)
    home = tmp / "home"
    home.mkdir()
    config = ((code_root or ROOT) / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(instance(config) if instance else config)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "QUANTLAB_DB": str(tmp / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(tmp / "artifacts"),
        "QUANTLAB_SYMBOLS": str(registry(tmp / "symbols.yaml", names)),
        "QUANTLAB_DATA_PROVIDER": "synthetic",
        "QUANTLAB_STRATEGIES": str((code_root or ROOT) / "strategies"),
    }
    if code_root is not None:
        env["PYTHONPATH"] = str(code_root)
    return env


def materialize(env: dict, partitions: str, code_root: Path | None = None, definitions=DEFINITIONS) -> dict:
    """One ``ohlcv*`` run (a range ``A...B`` or one partition): wall, steps, CPU, peak RSS, log."""
    flag = "--partition-range" if "..." in partitions else "--partition"
    cmd = ["/usr/bin/time", "-f", "QUANTLAB_BENCH_RUSAGE %e %U %S %M", DAGSTER, "asset", "materialize"]
    cmd += [*definitions, "--select", "ohlcv*", flag, partitions]
    took, log = run(cmd, env=env, cwd=code_root or ROOT)
    # Beside the warehouse, so a --keep directory shows what each run logged.
    (Path(env["QUANTLAB_DB"]).parent / f"run-{partitions.replace('...', '_')}.log").write_text(log)
    wall, user, system, rss_kb = re.findall(r"QUANTLAB_BENCH_RUSAGE ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", log)[-1]
    return {
        "wall": took,
        "steps": steps(log),
        "cpu": float(user) + float(system),
        "rss_gb": int(rss_kb) / 1024**2,
        "log": log,
    }


def chain(tmp: Path, names: int, first: str, last: str, code_root: Path | None) -> dict:
    """One whole-chain backfill in a fresh run directory ``tmp``."""
    return materialize(lab_env(tmp, names, code_root), f"{first}...{last}", code_root)


def years_range(years: int) -> tuple[str, str]:
    """Calendar years ending 2024 (10 years: 2015-01-02...2024-12-31, run_all.py's range)."""
    last = trading_days("2024-12-01", "2024-12-31")[-1]
    first = trading_days(f"{2025 - years}-01-01", f"{2025 - years}-01-31")[0]
    return str(first.date()), str(last.date())


def summary(label: str, r: dict) -> str:
    return (
        f"{label:<26} wall {r['wall']:7.1f} s  steps {sum(r['steps'].values()):7.1f} s  "
        f"CPU {r['cpu']:7.1f} s  peak RSS {r['rss_gb']:.2f} GB"
    )


def say(*lines: str) -> None:
    """Print as it goes: a long bench shows its progress."""
    print(*lines, sep="\n", flush=True)


def step_table(results: dict[str, dict]) -> None:
    """Every step's seconds, one column per run, the first run's largest first."""
    labels = list(results)
    order = sorted(
        {s for r in results.values() for s in r["steps"]}, key=lambda s: -results[labels[0]]["steps"].get(s, 0)
    )
    say("", "| step | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels))
    for s in order:
        say(f"| {s} | " + " | ".join(f"{results[lab]['steps'].get(s, float('nan')):.1f}" for lab in labels) + " |")


# --- this tree next to the baseline, and the per-step table -------------------------------------


def compare(tmp: Path, names: int, years: int, baseline: Path | None, cores: bool) -> None:
    first, last = years_range(years)
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if baseline:
        trees.insert(0, (f"baseline ({baseline.name})", baseline.resolve()))
    say(f"## Whole chain (ohlcv*), one run, {names} names, {first}...{last} ({years} years)", "")
    results = {}
    for i, (label, root) in enumerate(trees):
        results[label] = chain(tmp / f"chain{i}-{names}x{years}y", names, first, last, root)
        say(summary(label, results[label]))
    if len(results) == 2:
        (_, b), (_, n) = results.items()
        say("", f"ratio baseline / this tree: wall {b['wall'] / n['wall']:.2f}x, CPU {b['cpu'] / n['cpu']:.2f}x")
    step_table(results)
    if cores:
        run_dir = tmp / f"chain{len(trees) - 1}-{names}x{years}y"
        per_step_table(run_dir, first, last, results["this tree"]["steps"])


def core_seconds(run_dir: Path, first: str, last: str) -> dict[str, dict[str, float]]:
    """bench_cores.py in its own process (the definitions read the run's environment when loaded)."""
    cmd = [sys.executable, str(HERE / "bench_cores.py"), "--run-dir", str(run_dir), "--range", f"{first}...{last}"]
    _, out = run([*cmd, "--json"], cwd=HERE)
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


def per_step_table(run_dir: Path, first: str, last: str, step_s: dict[str, float], limit: float = 5.0) -> None:
    """step | step seconds | core alone | ratio | within ``limit``x (issue 16: a step ≤ 5x its core)."""
    cores = core_seconds(run_dir, first, last)
    say(
        "",
        f"### Per step: the run's step seconds vs the step's core compute alone (same range, this tree; "
        f"inputs read beforehand, not timed), goal ≤ {limit:g}x",
        "",
        f"| step | step (s) | core alone (s) | inputs read (s) | ratio | ≤{limit:g}x? |",
        "|---|---|---|---|---|---|",
    )
    for step, took in sorted(step_s.items(), key=lambda kv: -kv[1]):
        core = cores.get(step)
        if core is None:  # e.g. ohlcv_quality_gate: checks on the stored table, no core entry
            say(f"| {step} | {took:.2f} | – | – | – | – |")
            continue
        ratio = took / core["core"] if core["core"] > 0 else float("inf")
        mark = "yes" if ratio <= limit else "**no**"
        say(f"| {step} | {took:.2f} | {core['core']:.2f} | {core['read']:.2f} | {ratio:.1f}x | {mark} |")
    total_core = sum(c["core"] for c in cores.values())
    say("", f"sum: steps {sum(step_s.values()):.1f} s, cores alone {total_core:.1f} s")


# --- scaling: names x years ----------------------------------------------------------------------


def scaling(tmp: Path, names_list: list[int], years_list: list[int]) -> None:
    """Each cell one run of this tree; growth = a cell over the cell with the fewest names (same
    years) and over the cell with the fewest years (same names)."""
    say("## Scaling: this tree, whole chain as one run per cell", "")
    cells = {}
    for names, years in itertools.product(names_list, years_list):
        first, last = years_range(years)
        cells[names, years] = chain(tmp / f"scaling-{names}x{years}y", names, first, last, None)
        print(summary(f"{names} names x {years} years", cells[names, years]), flush=True)
    n0, y0 = names_list[0], years_list[0]
    say(
        "",
        f"| names | years | wall (s) | CPU (s) | peak RSS (GB) | wall / {n0} names | wall / {y0} years "
        f"| RSS / {n0} names | RSS / {y0} years |",
        "|---|---|---|---|---|---|---|---|---|",
    )
    for (names, years), r in cells.items():
        by_n, by_y = cells[n0, years], cells[names, y0]
        say(
            f"| {names} | {years} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_gb']:.2f} "
            f"| {r['wall'] / by_n['wall']:.2f}x | {r['wall'] / by_y['wall']:.2f}x "
            f"| {r['rss_gb'] / by_n['rss_gb']:.2f}x | {r['rss_gb'] / by_y['rss_gb']:.2f}x |",
        )


# --- one daily partition at two universe sizes ---------------------------------------------------


def daily(tmp: Path, names_list: list[int], history_years: int, day: str, limit: float = 1.5) -> None:
    """After a whole-chain backfill of ``history_years`` before ``day`` (so targets, the backtest's
    state and the supervisor's previous decisions exist), one ``--partition day`` run per size."""
    first = str(shift_sessions(day, -252 * history_years).date())
    prev = str(shift_sessions(day, -1).date())
    say(f"## One daily partition of the whole chain ({day}, after backfilling {first}...{prev})", "")
    runs = {}
    for names in names_list:
        env = lab_env(tmp / f"daily-{names}", names, None)
        backfill = materialize(env, f"{first}...{prev}")
        runs[names] = materialize(env, day)
        print(summary(f"{names} names, backfill", backfill), flush=True)
        say(summary(f"{names} names, {day}", runs[names]))
    lo, hi = runs[names_list[0]], runs[names_list[-1]]
    wall, step_sum = hi["wall"] / lo["wall"], sum(hi["steps"].values()) / sum(lo["steps"].values())
    say(
        "",
        f"ratio {names_list[-1]} / {names_list[0]} names: wall {wall:.2f}x, steps {step_sum:.2f}x, "
        f"CPU {hi['cpu'] / lo['cpu']:.2f}x (goal ≤ {limit:g}x: {'met' if wall <= limit else 'not met'} on wall)",
    )
    step_table({f"{n} names": r for n, r in runs.items()})


# --- executors ---------------------------------------------------------------------------------

EXECUTORS = {
    # label: (chain_executor.py's variables, how the instance's dagster.yaml changes)
    "in-process (definitions.py)": ({}, None),
    "multiprocess, 2 at once, warehouse pool": (
        {"QUANTLAB_BENCH_EXECUTOR": "multiprocess", "QUANTLAB_BENCH_POOL": "quantlab_warehouse"},
        pooled,
    ),
    "multiprocess, 2 at once, no pool": ({"QUANTLAB_BENCH_EXECUTOR": "multiprocess"}, None),
    "multiprocess + forkserver, 2 at once, warehouse pool": (
        {
            "QUANTLAB_BENCH_EXECUTOR": "multiprocess",
            "QUANTLAB_BENCH_FORKSERVER": "1",
            "QUANTLAB_BENCH_POOL": "quantlab_warehouse",
        },
        pooled,
    ),
}


def lock_waits(log: str) -> int:
    """Logged waits for another process's DuckDB lock (common.warehouse logs a wait at once, then every 5 s)."""
    return len(re.findall(r"waiting for the DuckDB lock", log))


def executors(tmp: Path, names: int, years: int, labels: list[str]) -> None:
    first, last = years_range(years)
    say(f"## Executors: whole chain, {names} names, {first}...{last}, one run each", "")
    for i, label in enumerate(labels):
        variables, instance = EXECUTORS[label]
        env = {
            **lab_env(tmp / f"executor{i}", names, None, instance),
            **variables,
            "QUANTLAB_BENCH_MAX_CONCURRENT": "2",
        }
        definitions = DEFINITIONS if not variables else ["-f", str(HERE / "chain_executor.py")]
        try:
            r = materialize(env, f"{first}...{last}", definitions=definitions)
        except SystemExit as failed:  # a lock error fails the run: report it, keep benching
            tail = [m for m in str(failed).splitlines() if "lock" in m.lower()][-3:]
            say(f"{label:<40} FAILED: {' / '.join(tail) or str(failed)[-300:]}")
            continue
        say(f"{label:<40} {summary('', r).strip()}  lock waits {lock_waits(r['log'])}")
    say(
        "",
        "CPU and peak RSS: the run's process and the children it waited for (/usr/bin/time); a forkserver's "
        "step processes are the server's children, so that row misses them. Lock waits: the warehouse "
        "resource's logged waits for another step's DuckDB lock.",
    )


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--baseline", type=Path, metavar="DIR")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep every run's directory under DIR")
    parser.add_argument("--no-chain", action="store_true", help="skip the this-tree/baseline chain run")
    parser.add_argument("--no-cores", action="store_true", help="skip the per-step core table")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--names", type=_ints, default=[50, 500, 2000], help="scaling: names, e.g. 50,500,2000")
    parser.add_argument("--years-list", type=_ints, default=[2, 5, 10], help="scaling: years, e.g. 2,5,10")
    parser.add_argument("--daily", action="store_true")
    parser.add_argument("--daily-names", type=_ints, default=[50, 500])
    parser.add_argument("--daily-history", type=int, default=1, help="daily: years backfilled first")
    parser.add_argument("--day", default="2024-12-02", help="daily: the partition timed")
    parser.add_argument("--executors", action="store_true")
    parser.add_argument("--executor", action="append", choices=list(EXECUTORS), help="executors: a subset")
    args = parser.parse_args()
    print(
        f"# bench_chain.py: synthetic provider, generated registries, in-process executor unless said; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cpus, "
        f"python {sys.version.split()[0]}\n",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        tmp = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if not args.no_chain:
            compare(tmp, args.symbols, args.years, args.baseline, cores=not args.no_cores)
        if args.scaling:
            print()
            scaling(tmp, args.names, args.years_list)
        if args.daily:
            print()
            daily(tmp, args.daily_names, args.daily_history, args.day)
        if args.executors:
            print()
            executors(tmp, args.symbols, args.years, args.executor or list(EXECUTORS))


if __name__ == "__main__":
    main()
