"""Backtest benchmark: W symbols x Y years of daily target weights through the engine.

Prices are synthetic random walks (a market factor plus idiosyncratic noise, overnight gaps);
targets are a long-only top-K equal-weight book on a persistent random score, decided at every
close (so every session rebalances: drift trades plus names entering and leaving).

Prints the engine's time (``simulate`` on arrays, best and median of several runs; also day by
day with the state threaded, and the frames wrapper ``run_backtest``) next to a baseline
measured in the same run: a plain Python loop over sessions and symbols doing the same
accounting. Both must end on the same equity. If ``vectorbt`` is importable it is run too
(``bench/vbt_baseline.py``, shared with ``bench_research.py``).

    python bench/bench_backtest.py [--symbols 500] [--years 10] [--baseline-sessions 0]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from vbt_baseline import run as run_vectorbt

from quantlab_assets.backtest_engine.core.engine import BacktestState, run_backtest, simulate
from quantlab_assets.backtest_engine.core.kpis import kpi_table
from quantlab_assets.common.calendar import SESSIONS_PER_YEAR


def synthetic_market(n_symbols: int, n_sessions: int, top_k: int, missing: float, seed: int):
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0003, 0.009, (n_sessions, 1))
    beta = rng.uniform(0.6, 1.4, n_symbols)
    log_ret = market * beta + rng.normal(0.0, 0.014, (n_sessions, n_symbols))
    start = np.exp(rng.uniform(np.log(15), np.log(300), n_symbols))
    close = start * np.exp(np.cumsum(log_ret, axis=0))
    prev_close = np.vstack([start, close[:-1]])
    open_ = prev_close * np.exp(0.3 * log_ret + rng.normal(0, 0.003, (n_sessions, n_symbols)))
    if missing:
        open_[rng.random(open_.shape) < missing] = np.nan
        close[rng.random(close.shape) < missing] = np.nan
    # A persistent score (AR(1)); the top K names get equal weight at every close.
    score = np.empty((n_sessions, n_symbols))
    level = rng.normal(size=n_symbols)
    shocks = rng.normal(size=(n_sessions, n_symbols))
    for t in range(n_sessions):
        level = 0.95 * level + 0.31 * shocks[t]
        score[t] = level
    top = np.argpartition(-score, top_k - 1, axis=1)[:, :top_k]
    weights = np.zeros((n_sessions, n_symbols))
    np.put_along_axis(weights, top, 1.0 / top_k, axis=1)
    return open_, close, weights


def python_loop(capital: float, open_, close, decisions, bps: float) -> float:
    """The baseline: the same convention, one session and one symbol at a time, on lists."""
    O, C, D = open_.tolist(), close.tolist(), decisions.tolist()  # noqa: E741 - open, close, decisions
    n = len(O[0]) if O else 0
    cash, shares, mark, pending = capital, [0.0] * n, [math.nan] * n, None
    equity = capital
    for t in range(len(O)):
        o, c = O[t], C[t]
        if pending is not None:
            eo = cash
            for j in range(n):
                if shares[j] != 0.0:
                    eo += shares[j] * (o[j] if o[j] == o[j] else mark[j])
            rate = bps / 1e4
            total = sum(pending)
            floor = min(0.0, eo * (1.0 - total)) if total > 1.0 + 1e-9 else 0.0
            # By order value (target minus held value, then symbol): sells first, largest buy last.
            orders = sorted(
                (pending[j] * eo - shares[j] * o[j], j, pending[j] * eo / o[j] - shares[j])
                for j in range(n)
                if o[j] == o[j]
            )
            for _, j, delta in orders:
                notional = delta * o[j]
                if notional > 0.0 and cash - notional - notional * rate < floor:
                    delta = max(0.0, (cash - floor) / (1.0 + rate)) / o[j]  # trimmed to the cash
                    notional = delta * o[j]
                    cash = max(cash - notional - notional * rate, floor)
                else:
                    cash = cash - notional - abs(notional) * rate
                shares[j] += delta
        equity = cash
        for j in range(n):
            p = c[j]
            if p == p:
                mark[j] = p
            elif mark[j] != mark[j] and o[j] == o[j]:
                mark[j] = o[j]
            if shares[j] != 0.0:
                equity += shares[j] * mark[j]
        row = D[t]
        pending = None if all(w != w for w in row) else [0.0 if w != w else w for w in row]
    return equity


def long_frames(open_, close, weights):
    T, N = open_.shape
    dates = pd.bdate_range("2015-01-02", periods=T)
    symbols = np.array([f"S{i:04d}" for i in range(N)], dtype=object)
    bars = pd.DataFrame(
        {
            "date": np.repeat(dates, N),
            "symbol": np.tile(symbols, T),
            "open": open_.ravel(),
            "close": close.ravel(),
            "adj_close": close.ravel(),
        }
    )
    held = weights.ravel() != 0
    targets = pd.DataFrame(
        {"date": np.repeat(dates, N)[held], "symbol": np.tile(symbols, T)[held], "weight": weights.ravel()[held]}
    )
    return dates, bars, targets


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--top", type=int, default=50, help="names held (equal weight)")
    parser.add_argument("--fee-bps", type=float, default=1.0)
    parser.add_argument("--slippage-bps", type=float, default=2.0)
    parser.add_argument("--missing", type=float, default=0.0, help="share of missing open/close prices")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--baseline-sessions",
        type=int,
        default=0,
        help="time the Python loop on the first S sessions and scale linearly (0: all)",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    T, N = args.years * SESSIONS_PER_YEAR, args.symbols
    capital, bps = 1_000_000.0, args.fee_bps + args.slippage_bps
    open_, close, weights = synthetic_market(N, T, args.top, args.missing, args.seed)
    start = BacktestState.initial(N, capital)

    def engine(sessions=T):
        return simulate(start, open_[:sessions], close[:sessions], weights[:sessions], args.fee_bps, args.slippage_bps)

    engine()  # warm-up (first-touch page faults, imports)
    (final, res), times = timed(engine, args.repeat)
    best, median = min(times), statistics.median(times)

    state, day_start = start, time.perf_counter()
    for t in range(T):
        state, _ = simulate(
            state, open_[t : t + 1], close[t : t + 1], weights[t : t + 1], args.fee_bps, args.slippage_bps
        )
    day_by_day = time.perf_counter() - day_start

    base_sessions = T if args.baseline_sessions <= 0 else min(args.baseline_sessions, T)
    base_start = time.perf_counter()
    base_equity = python_loop(capital, open_[:base_sessions], close[:base_sessions], weights[:base_sessions], bps)
    base_time = time.perf_counter() - base_start
    base_scaled = base_time * T / base_sessions
    engine_equity = final.equity if base_sessions == T else engine(base_sessions)[0].equity

    dates, bars, targets = long_frames(open_, close, weights)
    out, wrapper_times = timed(
        lambda: run_backtest(bars, targets, dates[0], dates[-1], None, args.fee_bps, args.slippage_bps, capital), 3
    )
    table, kpi_times = timed(lambda: kpi_table(out.equity), 3)

    print(
        f"machine: {platform.machine()} {cpu_name()} ({__import__('os').cpu_count()} cpus), "
        f"{platform.system()} python {platform.python_version()} numpy {np.__version__} "
        f"pandas {pd.__version__}"
    )
    print(
        f"workload: {N} symbols x {T} sessions ({args.years} years), top-{args.top} equal-weight "
        f"targets decided at every close, costs {args.fee_bps:g}+{args.slippage_bps:g} bps, "
        f"missing prices {args.missing:.2%}"
    )
    print(
        f"  fills {len(res.trades):,}, mean daily turnover {np.mean(res.turnover[1:]):.1%}, "
        f"costs {res.costs.sum():,.0f}, final equity {final.equity:,.2f}"
    )
    print(
        f"engine simulate, one call     : best {best * 1e3:7.1f} ms, median {median * 1e3:7.1f} ms "
        f"over {args.repeat} runs ({best / T * 1e6:.1f} us/session)"
    )
    print(
        f"engine simulate, day by day   : {day_by_day * 1e3:7.1f} ms for {T} one-session calls; "
        f"final state bit-identical to one call: {state == final}"
    )
    label = "all" if base_sessions == T else f"first {base_sessions}, scaled x{T / base_sessions:.1f}"
    print(f"plain Python loop baseline    : {base_scaled:7.2f} s  (timed on {label} sessions: {base_time:.2f} s)")
    print(f"ratio baseline / engine       : {base_scaled / best:7.0f}x (best), {base_scaled / median:.0f}x (median)")
    rel = abs(engine_equity - base_equity) / abs(base_equity)
    print(
        f"same final equity after {base_sessions} sessions: engine {engine_equity:,.6f} "
        f"baseline {base_equity:,.6f} (relative difference {rel:.1e})" + ("" if rel < 1e-9 else "  <-- MISMATCH")
    )
    print(
        f"run_backtest (long frames in/out, {len(bars):,} bar rows): best "
        f"{min(wrapper_times):.2f} s; kpi_table over {len(table) // 2} dates: best "
        f"{min(kpi_times) * 1e3:.0f} ms"
    )

    try:
        import vectorbt  # noqa: F401 - only whether it is importable here
    except ImportError:
        print("vectorbt: not installed; comparison skipped")
        return
    # Same convention: decide at close t, fill at open t+1 (the sizes row shifted by one).
    sizes = np.vstack([np.full((1, N), np.nan), weights[:-1]])
    vbt = run_vectorbt(open_, close, sizes, bps / 1e4, capital)
    print(
        f"vectorbt {vbt['version']} from_orders(targetpercent): {vbt['first_seconds']:.2f} s first call "
        f"(numba compilation), {vbt['seconds']:.2f} s warm; final equity {vbt['equity']:,.2f} "
        f"(relative difference to the engine {abs(vbt['equity'] - final.equity) / final.equity:.1e})"
    )


if __name__ == "__main__":
    main()
