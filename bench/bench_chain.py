"""The whole chain backfilled as one run at W generated names, this tree next to a baseline commit.

Each code version materializes ``ohlcv*`` (every partitioned asset, the repository's strategies)
over Y years of weekday partitions with the synthetic provider and a generated registry of W names,
in a fresh DAGSTER_HOME and warehouse, through the same ``dagster asset materialize`` command as
``run_all.py``. Printed side by side: wall time, the sum of the steps, process CPU time, peak RSS
(``/usr/bin/time``), and every step's seconds.

    python bench/bench_chain.py [--symbols 500] [--years 2] [--baseline DIR]

``--baseline DIR``: a checkout of the baseline commit (``git archive COMMIT | tar -x -C DIR``); its
``quantlab_assets`` is imported through PYTHONPATH from the same venv, so only the code differs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from run_all import DAGSTER, ROOT, run, steps

from quantlab_assets.common.calendar import trading_days


def registry(path: Path, n: int) -> Path:
    path.write_text(
        "universe: generated\nsymbols:\n" + "".join(f"  - {{symbol: G{i:04d}, sector: S{i % 11}}}\n" for i in range(n))
    )
    return path


def chain(tmp: Path, names: int, first: str, last: str, code_root: Path | None) -> dict:
    """One whole-chain backfill: wall, steps, CPU, peak RSS of the dagster process."""
    tmp.mkdir(parents=True)
    home = tmp / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(((code_root or ROOT) / "dagster.yaml").read_text())
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
    cmd = [
        "/usr/bin/time",
        "-f",
        "QUANTLAB_BENCH_RUSAGE %e %U %S %M",
        DAGSTER,
        "asset",
        "materialize",
        "-m",
        "quantlab_assets.definitions",
        "--select",
        "ohlcv*",
        "--partition-range",
        f"{first}...{last}",
    ]
    took, log = run(cmd, env=env, cwd=code_root or ROOT)
    wall, user, system, rss_kb = re.findall(r"QUANTLAB_BENCH_RUSAGE ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", log)[-1]
    per_step = steps(log)
    return {
        "wall": took,
        "steps": per_step,
        "cpu": float(user) + float(system),
        "rss_gb": int(rss_kb) / 1024**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--baseline", type=Path, metavar="DIR")
    args = parser.parse_args()
    # Calendar years ending 2024 (10 years: 2015-01-02...2024-12-31, run_all.py's range).
    last = trading_days("2024-12-01", "2024-12-31")[-1]
    first = trading_days(f"{2025 - args.years}-01-01", f"{2025 - args.years}-01-31")[0]
    first_s, last_s = str(first.date()), str(last.date())
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline:
        trees.insert(0, (f"baseline ({args.baseline.name})", args.baseline.resolve()))
    print(
        f"# whole chain (ohlcv*), one run, {args.symbols} generated names, {first_s}...{last_s} "
        f"({args.years} years), synthetic provider, in-process executor; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, root) in enumerate(trees):
            results[label] = chain(Path(tmp) / f"run{i}", args.symbols, first_s, last_s, root)
            r = results[label]
            print(
                f"{label:<22} wall {r['wall']:7.1f} s  steps {sum(r['steps'].values()):7.1f} s  "
                f"CPU {r['cpu']:7.1f} s  peak RSS {r['rss_gb']:.2f} GB",
                flush=True,
            )
    if len(results) == 2:
        (_, b), (_, n) = results.items()
        print(f"\nratio baseline / this tree: wall {b['wall'] / n['wall']:.2f}x, CPU {b['cpu'] / n['cpu']:.2f}x")
    labels = list(results)
    names = sorted(
        {s for r in results.values() for s in r["steps"]}, key=lambda s: -results[labels[0]]["steps"].get(s, 0)
    )
    print("\n| step | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for s in names:
        print(f"| {s} | " + " | ".join(f"{results[lab]['steps'].get(s, float('nan')):.1f}" for lab in labels) + " |")
    print(f"\nmachine: {os.cpu_count()} cpus, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
