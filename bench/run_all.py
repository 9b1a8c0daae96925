"""The benchmark suite: every figure next to a baseline measured in the same run.

    python bench/run_all.py            # component benchmarks, the bookkeeping baseline (stock SQLite
                                       # storage vs ours), one daily partition of the demo chain
    python bench/run_all.py --backfill # also the 10-year whole-chain backfill (about 10 minutes)
    python bench/run_all.py --chain-symbols 500 [--chain-years 2] [--baseline DIR]
                                       # also the whole chain at 500 generated names next to the
                                       # baseline commit checked out in DIR, with the per-step table
                                       # (step vs its core alone), and the asset path (bench_research.py)
    python bench/run_all.py --parts scaling,chain-daily,executors [--scaling-names 50,500,2000]
                                       # only these parts (bench_chain.py --scaling / --daily / --executors)

Parts (``--parts`` runs exactly these): components, daily, bookkeeping, backfill, chain, scaling,
chain-daily, executors, research. Issue 16's whole set, on merged code (an hour or more):

    python bench/run_all.py --parts components,bookkeeping,chain,scaling,chain-daily,executors \\
        --chain-symbols 500 --chain-years 10 --baseline DIR

Writes bench/results.md (or --out FILE): machine, versions, figures. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")

PROBE = """
import dagster as dg
pd_ = dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 * * 1-5", start="2015-01-01", fmt="%Y-%m-%d",
                                        timezone="America/New_York")
@dg.asset(partitions_def=pd_, backfill_policy=dg.BackfillPolicy.single_run())
def probe(context):
    return dg.MaterializeResult(metadata={"dagster/row_count": 1})
defs = dg.Definitions(assets=[probe], executor=dg.in_process_executor)
"""


def run(cmd, env=None, cwd=ROOT) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return took, out.stdout + out.stderr


STOCK_STORAGE = """storage:
  sqlite:
    base_dir:
      env: DAGSTER_HOME
"""


def lab_env(tmp: Path, stock_storage: bool = False) -> dict:
    """A temporary DAGSTER_HOME with the repository's dagster.yaml, or with Dagster's stock
    `storage: sqlite` in place of QuantLabSqliteStorage (the baseline for the bookkeeping)."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    config = (ROOT / "dagster.yaml").read_text()
    if stock_storage:
        config = re.sub(r"^storage:\n(?:[ #].*\n)+", STOCK_STORAGE, config, flags=re.M)
        assert "QuantLabSqliteStorage" not in config
    (home / "dagster.yaml").write_text(config)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "QUANTLAB_DB": str(tmp / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(tmp / "artifacts"),
    }


def materialize(env, select, partitions) -> tuple[float, str]:
    flag = "--partition-range" if "..." in partitions else "--partition"
    return run(
        [DAGSTER, "asset", "materialize", "-m", "quantlab_assets.definitions", "--select", select, flag, partitions],
        env=env,
    )


PARTITIONS_10Y = 2610  # weekday partitions 2015-01-01...2024-12-31


def steps(log: str) -> dict[str, float]:
    """Step durations from the run's log ("in 431ms", "in 12.5s", "in 1m8s")."""
    out = {}
    for name, minutes, value, unit in re.findall(
        r'Finished execution of step "([\w]+)" in (?:(\d+)m)?([0-9.]+)(ms|s)', log
    ):
        out[name] = int(minutes or 0) * 60 + float(value) / (1000 if unit == "ms" else 1)
    return out


def components(lines: list[str]) -> None:
    for script in ("bench_ingest.py", "bench_features.py", "bench_backtest.py", "bench_bookkeeping.py"):
        took, out = run([sys.executable, str(HERE / script)])
        lines += [f"## {script} ({took:.0f} s)", "", "```", out.strip(), "```", ""]
        print(out)


def daily_demo(tmp: Path, lines: list[str]) -> None:
    """One daily partition of the whole chain on the 50-name demo universe, after 300 sessions of ohlcv."""
    from quantlab_assets.common.calendar import shift_sessions

    env = lab_env(tmp / "daily")
    day = "2024-06-03"
    history = f"{shift_sessions(day, -300).date()}...{shift_sessions(day, -1).date()}"
    t_hist, _ = materialize(env, "ohlcv", history)
    t_day, log = materialize(env, "ohlcv*", day)
    per_step = steps(log)
    lines += [
        "## One daily partition of the whole chain (`dagster asset materialize`)",
        "",
        f"- history ingest ({history}, one run, ohlcv only): {t_hist:.1f} s",
        f"- the whole chain for {day}: **{t_day:.1f} s** wall, of which steps "
        f"{sum(per_step.values()):.1f} s (aim: under 30 s); the rest is process start, "
        "loading the definitions and run bookkeeping",
        "",
    ]
    print(lines[-3:])


def bookkeeping(tmp: Path, lines: list[str]) -> dict[bool, float]:
    """The probe's seconds per asset-partition on the stock SQLite storage (True) and ours (False)."""
    probe_dir = tmp / "probe"
    probe_dir.mkdir()
    (probe_dir / "probe.py").write_text(PROBE)
    per_event = {}
    lines += [
        "## Dagster bookkeeping per asset-partition (same run)",
        "",
        f"A bare one-asset graph backfilled over {PARTITIONS_10Y} weekday partitions in one run "
        "(`dagster asset materialize --partition-range`, in-process executor):",
        "",
        "| instance storage | wall | step | per asset-partition |",
        "|---|---|---|---|",
    ]
    for label, stock in (
        ("Dagster's stock `storage: sqlite`", True),
        ("QuantLabSqliteStorage (dagster.yaml)", False),
    ):
        cmd = [DAGSTER, "asset", "materialize", "-f", str(probe_dir / "probe.py"), "--select", "probe"]
        t_probe, plog = run(
            [*cmd, "--partition-range", "2015-01-01...2024-12-31"],
            env=lab_env(tmp / f"probe_home_{stock}", stock_storage=stock),
        )
        step = steps(plog)["probe"]
        per_event[stock] = step / PARTITIONS_10Y
        lines.append(f"| {label} | {t_probe:.1f} s | {step:.2f} s | {step / PARTITIONS_10Y * 1000:.2f} ms |")
    lines += ["", f"Ratio: {per_event[True] / per_event[False]:.0f}x less bookkeeping per asset-partition.", ""]
    print(lines[-8:])
    return per_event


def backfill(tmp: Path, lines: list[str], per_event: dict[bool, float] | None) -> None:
    """The 10-year whole-chain backfill of the demo universe, one run."""
    import dagster as dg

    from quantlab_assets.definitions import defs

    keys = dg.AssetSelection.assets("ohlcv").downstream().resolve(defs.resolve_asset_graph())
    n = len(keys) * PARTITIONS_10Y
    t_bf, log = materialize(lab_env(tmp / "backfill"), "ohlcv*", "2015-01-02...2024-12-31")
    per_step = steps(log)
    lines += [
        "## 10-year backfill of the whole chain, one run",
        "",
        f"- {len(keys)} partitioned assets × {PARTITIONS_10Y} partitions = {n:,} asset-partitions",
        f"- wall time **{t_bf:.0f} s** (aim: under 300 s); steps {sum(per_step.values()):.0f} s",
        f"- outside the steps {max(0.0, t_bf - sum(per_step.values())):.0f} s: process start, "
        f"loading the definitions, planning and the run's planned events",
    ]
    if per_event:  # the bookkeeping part ran: split the steps by the probe's rate
        lines += [
            f"- of the steps, Dagster's per-partition events ~{n * per_event[False]:.0f} s (the probe's rate); "
            f"with the stock storage they would be about {n * per_event[True]:.0f} s "
            f"(estimate: {n:,} x {per_event[True] * 1000:.1f} ms)",
        ]
    lines += ["", "| step | seconds |", "|---|---|", *[f"| {k} | {v:.1f} |" for k, v in per_step.items()], ""]


def bench_chain(lines: list[str], title: str, *flags: str) -> None:
    """One bench_chain.py part, its printout as a section of results.md."""
    took, out = run([sys.executable, str(HERE / "bench_chain.py"), *flags], cwd=HERE)
    lines += [f"## {title} ({took:.0f} s): `cd bench && python bench_chain.py {' '.join(flags)}`", "", out.strip(), ""]
    print(out)


def research(lines: list[str], baseline: str | None) -> None:
    cmd = [sys.executable, str(HERE / "bench_research.py"), "--symbols", "50", "--assets-only", "--asset-runs", "2"]
    took, out = run(cmd + (["--baseline", baseline] if baseline else []), cwd=HERE)
    lines += [f"## bench_research.py --symbols 50 --assets-only ({took:.0f} s)", "", "```", out.strip(), "```", ""]
    print(out)


PARTS = ("components", "daily", "bookkeeping", "backfill", "chain", "scaling", "chain-daily", "executors", "research")
DEFAULT_PARTS = ("components", "daily", "bookkeeping")


def chosen_parts(args) -> list[str]:
    """--parts exactly, else the default parts plus those the older flags switch on."""
    if args.parts:
        unknown = set(args.parts) - set(PARTS)
        if unknown:
            raise SystemExit(f"--parts: unknown {', '.join(sorted(unknown))}; valid: {', '.join(PARTS)}")
        return args.parts
    parts = list(DEFAULT_PARTS) + (["backfill"] if args.backfill else [])
    return parts + (["chain", "research"] if args.chain_symbols else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=lambda t: t.split(","), help=f"run only these, of: {', '.join(PARTS)}")
    parser.add_argument("--backfill", action="store_true", help="also run the 10-year whole-chain backfill")
    parser.add_argument("--chain-symbols", type=int, default=0, help="also bench_chain.py at this many names")
    parser.add_argument("--chain-years", type=int, default=2)
    parser.add_argument("--baseline", metavar="DIR", help="bench_chain.py / bench_research.py baseline checkout")
    parser.add_argument("--scaling-names", default="50,500,2000")
    parser.add_argument("--scaling-years", default="2,5,10")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    parts = chosen_parts(args)
    names = str(args.chain_symbols or 500)
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Parts: {', '.join(parts)}.",
        "",
    ]
    if "components" in parts:
        components(lines)
    with tempfile.TemporaryDirectory() as tmp:
        per_event = bookkeeping(Path(tmp), lines) if "bookkeeping" in parts else None
        if "daily" in parts:
            daily_demo(Path(tmp), lines)
        if "backfill" in parts:
            backfill(Path(tmp), lines, per_event)
    if "chain" in parts:  # this tree next to the baseline commit, then the per-step table
        flags = ["--symbols", names, "--years", str(args.chain_years)]
        bench_chain(
            lines, f"Whole chain at {names} names", *flags, *(["--baseline", args.baseline] if args.baseline else [])
        )
    if "scaling" in parts:
        flags = ["--no-chain", "--scaling", "--names", args.scaling_names, "--years-list", args.scaling_years]
        bench_chain(lines, "Scaling with names and years", *flags)
    if "chain-daily" in parts:
        bench_chain(lines, "One daily partition at 50 and 500 names", "--no-chain", "--daily")
    if "executors" in parts:
        bench_chain(
            lines, "Executors", "--no-chain", "--executors", "--symbols", names, "--years", str(args.chain_years)
        )
    if "research" in parts:
        research(lines, args.baseline)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
