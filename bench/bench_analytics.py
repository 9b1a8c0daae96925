"""Analytics benchmark over W symbols x Y years: one strategy's tearsheet and the feature_ic table.

* Tearsheet: a top-50 weekly-rebalanced book of W's synthetic market through the engine, then
  ``build_tearsheet`` (every figure, the seven PNG charts) and the self-contained HTML page; best
  and median of a few runs, with and without the charts. Baseline in the same run: quantstats'
  ``reports.html`` on the same daily returns and benchmark, where quantstats is importable here or
  in the interpreter given by ``--quantstats-python`` (it cannot share the project's venv
  cheaply: see docs/analytics.md).
* feature_ic: F random features (a few with a planted signal) and forward returns over 3
  horizons, as the long frames the asset reads, through ``factor_ic`` (per-date Pearson and rank
  IC, quintile returns, rank autocorrelation, summaries by year). Baseline in the same run:
  alphalens-reloaded (test-only dependency) on ``--alphalens-features`` of them (quantize,
  IC, mean return by quantile by date, rank autocorrelation), scaled to F features; the two agree
  on the rank IC of those features (printed).

    python bench/bench_analytics.py [--symbols 500] [--years 10] [--features 45]
        [--alphalens-features 1] [--quantstats-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import synthetic_market  # noqa: E402  (the same synthetic market as the backtest bench)

from quantlab_assets.analytics.core.factor_ic import factor_ic, factor_panels  # noqa: E402
from quantlab_assets.analytics.core.tearsheet import build_tearsheet, tearsheet_html  # noqa: E402
from quantlab_assets.backtest_engine.core.engine import run_backtest  # noqa: E402
from quantlab_assets.backtest_engine.core.store import equal_weight_benchmark  # noqa: E402
from quantlab_assets.common.calendar import trading_days  # noqa: E402

HORIZONS = (1, 5, 20)
QS_SCRIPT = """
import sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
t0 = time.perf_counter()
import quantstats as qs
t_import = time.perf_counter() - t0
frame = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)
times = []
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    qs.reports.html(frame["strategy"], frame["benchmark"], output=sys.argv[2], title="bench")
    times.append(time.perf_counter() - t0)
print(min(times), sorted(times)[len(times) // 2], t_import, qs.__version__)
"""


CPU = {}  # label -> CPU seconds of the best run (this process, all threads): the load-independent part


def timed(fn, repeat: int, label: str = ""):
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[label] = cpu[times.index(min(times))]
    return min(times), statistics.median(times), out


def book(n_symbols: int, n_sessions: int, seed: int = 7):
    open_, close, _ = synthetic_market(n_symbols, n_sessions, 50, 0.0, seed)
    days = trading_days("2015-01-02", "2040-12-31")[:n_sessions]
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    bars = pd.DataFrame(
        {
            "date": np.repeat(days, n_symbols),
            "symbol": np.tile(symbols, n_sessions),
            "open": open_.ravel(),
            "close": close.ravel(),
            "adj_close": close.ravel(),
        }
    )
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(0, n_sessions, 5):  # weekly: a persistent random top-50 book
        pick = rng.choice(n_symbols, 50, replace=False)
        rows.append(pd.DataFrame({"date": days[t], "symbol": np.asarray(symbols)[pick], "weight": 1 / 50}))
    out = run_backtest(bars, pd.concat(rows, ignore_index=True), days[0], days[-1], fee_bps=1, slippage_bps=5)
    return out, equal_weight_benchmark(bars)


def bench_tearsheet(args) -> list[str]:
    n_sessions = args.years * 252
    out, bench = book(args.symbols, n_sessions)
    lines = [
        f"## Tearsheet: {args.symbols} symbols x {args.years} years ({n_sessions} sessions, "
        f"{len(out.positions):,} position rows, {len(out.trades):,} trades)",
        "",
    ]
    best_c, med_c, _ = timed(
        lambda: build_tearsheet("bench", out.equity, out.positions, out.trades, bench, charts=False), args.repeat
    )
    best, med, sheet = timed(
        lambda: tearsheet_html(build_tearsheet("bench", out.equity, out.positions, out.trades, bench)),
        args.repeat,
        "sheet",
    )
    lines += [
        f"- figures only (no charts): best {best_c:.2f} s, median {med_c:.2f} s",
        f"- figures + 7 PNG charts + HTML: **best {best:.2f} s, median {med:.2f} s** (goal <= 2 s; "
        f"CPU {CPU['sheet']:.2f} s; page {len(sheet) / 1e6:.1f} MB)",
    ]
    py = args.quantstats_python
    if py is None:
        try:
            import quantstats  # noqa: F401

            py = sys.executable
        except ImportError:
            pass
    if py is None:
        lines.append("- baseline quantstats: not installed here (pass --quantstats-python of a venv that has it)")
        return lines
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "returns.csv"
        r = out.equity.set_index("date")["ret"]
        pd.DataFrame({"strategy": r, "benchmark": bench.reindex(r.index).fillna(0.0)}).to_csv(csv)
        script = Path(tmp) / "qs_bench.py"
        script.write_text(QS_SCRIPT)
        proc = subprocess.run(
            [py, str(script), str(csv), str(Path(tmp) / "qs.html"), str(args.repeat)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if proc.returncode != 0:
        lines.append(f"- baseline quantstats failed: {proc.stderr.strip().splitlines()[-1:]}")
        return lines
    q_best, q_med, q_import, version = proc.stdout.split()[-4:]
    lines.append(
        f"- baseline quantstats {version} `reports.html` (returns only, no positions): best "
        f"{float(q_best):.2f} s, median {float(q_med):.2f} s (+ {float(q_import):.1f} s import); "
        f"ratio {float(q_best) / best:.1f}x"
    )
    return lines


def features_and_labels(n_features: int, n_symbols: int, n_sessions: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    days = trading_days("2015-01-02", "2040-12-31")[: n_sessions + 25]
    dates = days[:n_sessions]
    symbols = np.array([f"S{i:04d}" for i in range(n_symbols)], dtype=object)
    signal = rng.normal(size=(n_sessions, n_symbols))
    feats = {"date": np.repeat(dates, n_symbols), "symbol": np.tile(symbols, n_sessions)}
    for k in range(n_features):
        noise = rng.normal(size=(n_sessions, n_symbols))
        feats[f"f{k:02d}"] = (noise + (0.2 * signal if k % 5 == 0 else 0.0)).ravel()
    labels = {"date": feats["date"], "symbol": feats["symbol"]}
    for h in HORIZONS:
        labels[f"fwd_ret_{h}"] = (0.01 * np.sqrt(h) * (0.05 * signal + rng.normal(size=signal.shape))).ravel()
        labels[f"exit_date_{h}"] = np.repeat(days[1 + h : n_sessions + 1 + h], n_symbols)
    return pd.DataFrame(feats), pd.DataFrame(labels), dates


def alphalens_baseline(feats, labels, names):
    import alphalens as al

    fwd = labels.set_index(["date", "symbol"])[[f"fwd_ret_{h}" for h in HORIZONS]]
    fwd.columns = [f"{h}D" for h in HORIZONS]
    fwd.index = fwd.index.set_names(["date", "asset"])
    out = {}
    for name in names:
        data = fwd.copy()
        data["factor"] = feats[name].to_numpy()
        data = data.dropna()
        data["factor_quantile"] = al.utils.quantize_factor(data, quantiles=5)
        ic = al.performance.factor_information_coefficient(data)
        al.performance.mean_return_by_quantile(data, by_date=True, demeaned=False)
        for h in HORIZONS:
            al.performance.factor_rank_autocorrelation(data, period=h)
        out[name] = ic
    return out


def bench_feature_ic(args) -> list[str]:
    n_sessions = args.years * 252
    feats, labels, dates = features_and_labels(args.features, args.symbols, n_sessions)
    names = [c for c in feats.columns if c.startswith("f")]
    as_of = dates[-1] + pd.Timedelta(days=60)
    factor_ic(feats.head(args.symbols * 30), labels.head(args.symbols * 30), names[:1], HORIZONS, as_of)  # compile
    best, med, summary = timed(lambda: factor_ic(feats, labels, names, HORIZONS, as_of), args.repeat_ic, "ic")
    lines = [
        "",
        f"## feature_ic: {len(names)} features x {len(HORIZONS)} horizons x {args.symbols} symbols x "
        f"{args.years} years ({len(feats):,} rows)",
        "",
        f"- factor_ic (long frames in, summary by year out): **best {best:.2f} s, median {med:.2f} s** "
        f"(goal <= 10 s; {len(summary)} summary rows; CPU {CPU['ic']:.2f} s, serial kernels)",
    ]
    try:
        import alphalens  # noqa: F401
    except ImportError:
        lines.append("- baseline alphalens-reloaded: not installed (pip install -e '.[dev]')")
        return lines
    k = max(1, min(args.alphalens_features, len(names)))
    t0 = time.perf_counter()
    ref = alphalens_baseline(feats, labels, names[:k])
    t_al = time.perf_counter() - t0
    panels = factor_panels(feats, labels, names[:k], HORIZONS, as_of)
    diff = max(
        float(np.nanmax(np.abs(panels.rank_ic[f, j] - ref[n][f"{h}D"].reindex(panels.dates).to_numpy())))
        for f, n in enumerate(names[:k])
        for j, h in enumerate(HORIZONS)
    )
    lines.append(
        f"- baseline alphalens-reloaded on {k} feature(s): {t_al:.1f} s, i.e. ~{t_al / k * len(names):.0f} s "
        f"for {len(names)} features (ratio ~{t_al / k * len(names) / best:.0f}x); max |rank IC difference| "
        f"{diff:.1e}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--features", type=int, default=45)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-ic", type=int, default=2)
    parser.add_argument("--alphalens-features", type=int, default=1)
    parser.add_argument("--quantstats-python", default=None)
    parser.add_argument("--only", choices=["tearsheet", "feature_ic"], default=None)
    args = parser.parse_args()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {os.getloadavg()[0]:.1f} (other processes share the cores)\n"
    )
    if args.only in (None, "tearsheet"):
        print("\n".join(bench_tearsheet(args)), flush=True)
    if args.only in (None, "feature_ic"):
        print("\n".join(bench_feature_ic(args)), flush=True)


if __name__ == "__main__":
    main()
