"""Each chain step's core compute alone, over the range a whole-chain run just materialized.

For every step of ``ohlcv*`` this reads the step's inputs from the run's warehouse the way the
asset body does (not timed), then times only the core call(s) the body makes on them. Issue 16's
goal is a step ≤ 5x its core: the rest (reads, write-audit-publish, metadata, Dagster's events) is
overhead. ``bench_chain.py --cores`` prints these next to the run's step seconds; alone:

    python bench/bench_cores.py --run-dir DIR --range 2023-01-03...2024-12-31 [--json]

``DIR`` is a run directory kept by ``bench_chain.py --keep`` (lab.duckdb, symbols.yaml). The core
entry of every step is one row of ``CORES`` (and ``STRATEGY_CORES`` per strategy): when a core's
signature changes, that row is the one place to adapt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab_environ(run_dir: Path, strategies: Path) -> dict[str, str]:
    """The variables a chain run in ``run_dir`` had (the layout ``bench_chain.py`` makes)."""
    return {
        "QUANTLAB_DB": str(run_dir / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(run_dir / "artifacts"),
        "QUANTLAB_SYMBOLS": str(run_dir / "symbols.yaml"),
        "QUANTLAB_DATA_PROVIDER": "synthetic",
        "QUANTLAB_STRATEGIES": str(strategies),
    }


@dataclass(frozen=True)
class Window:
    """What every core call shares: the run's dates and the resources' configuration."""

    start: date
    end: date
    registry: object
    market_data: object
    feature_store: object
    supervisor: object


# A row reads a step's inputs (not timed) and returns the timed call: the core entry, called
# exactly as the asset body calls it.
Core = Callable[..., Callable[[], object]]


def _ohlcv(con, w: Window):
    from quantlab_assets.data_curator.core.store import ohlcv_rows

    provider = w.market_data.build_provider(w.registry)
    # ingest_partition's compute: fetch and the rows with provenance; its write-audit-publish
    # is the step's warehouse work, like audit_and_publish in the other steps.
    return lambda: ohlcv_rows(
        provider.fetch(w.registry.tickers, w.start, w.end), provider.name, "bench", datetime.now(timezone.utc)
    )


def _features(con, w: Window):
    from quantlab_assets.common.warehouse import read_slice
    from quantlab_assets.data_curator.core.bars import read_bars, read_listings
    from quantlab_assets.feature_store.core.schema import features_schema
    from quantlab_assets.feature_store.core.step import features_partition, features_read_window, reference_window

    preset = w.feature_store.preset()
    bars = read_bars(con, *features_read_window(w.start, w.end, preset))
    listings = read_listings(con, bars["symbol"].unique())
    ref = read_slice(con, features_schema(preset), *reference_window(w.start, w.feature_store.drift_reference_sessions))
    return lambda: features_partition(bars, listings, ref, preset, w.start, w.end, w.feature_store.limits())


def _labels(con, w: Window):
    from quantlab_assets.data_curator.core.bars import read_bars
    from quantlab_assets.feature_store.core.step import labels_partition, labels_read_window

    bars = read_bars(con, *labels_read_window(w.start, w.end))
    return lambda: labels_partition(bars, w.start, w.end)


def _feature_ic(con, w: Window):
    from quantlab_assets.analytics.core import factor_ic as ic
    from quantlab_assets.analytics.ic_assets import FeatureICConfig
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.common.warehouse import read_slice
    from quantlab_assets.feature_store.core.schema import HORIZONS, LABELS, features_schema

    config, preset = FeatureICConfig(), w.feature_store.preset()
    start = shift_sessions(w.end, -config.lookback_sessions)
    feats = read_slice(con, features_schema(preset), start, w.end, columns=["date", "symbol", *preset.feature_names])
    labs = read_slice(con, LABELS, start, w.end)
    as_of = shift_sessions(w.end + timedelta(days=1), -1)

    def call():
        summary = ic.factor_ic(feats, labs, preset.feature_names, HORIZONS, as_of, config.quantiles, config.min_names)
        png = ic.ic_decay_png(summary) if ic.ranked(summary)["dates"].sum() > 0 else None
        return ic.feature_ic_markdown(summary, as_of, feats["date"].min(), "chart" if png else None)

    return call


def _leaderboard(con, w: Window, specs):
    from quantlab_assets.analytics.core import leaderboard as lb
    from quantlab_assets.backtest_engine.core.schema import BACKTEST_EQUITY, BACKTEST_KPIS
    from quantlab_assets.backtest_engine.core.store import FIRST_SESSION
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.common.warehouse import read_slice
    from quantlab_assets.portfolio_supervisor.core.schema import APPROVALS

    names = [s.name for s in specs]
    kpis = read_slice(con, BACKTEST_KPIS, FIRST_SESSION, w.end)
    equity = read_slice(con, BACKTEST_EQUITY, FIRST_SESSION, w.end, columns=["date", "strategy", "ret"])
    approvals = read_slice(con, APPROVALS, FIRST_SESSION, w.end, columns=["date", "strategy", "status"])
    kpis, equity, approvals = (f[f["strategy"].isin(names)] for f in (kpis, equity, approvals))

    def call():
        board = lb.leaderboard(kpis, equity, approvals, shift_sessions(w.end + timedelta(days=1), -1))
        png = lb.equity_curves_png(board) if len(board.returns) > 1 else b""
        return lb.leaderboard_markdown(board, "chart" if png else None), lb.leaderboard_markdown(board, None)

    return call


def _targets(con, w: Window, spec):
    from quantlab_assets.common import settings
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.common.warehouse import read_slice
    from quantlab_assets.feature_store.core.schema import LABELS
    from quantlab_assets.feature_store.core.sets import load_feature_sets, read_features
    from quantlab_assets.strategy_lab.core.construct import universe_of
    from quantlab_assets.strategy_lab.core.step import targets_partition
    from quantlab_assets.strategy_lab.core.targets import read_previous_weights

    model = spec.signal.model if spec.signal.kind == "model" else None
    universe = universe_of(w.registry, spec)
    load_from = shift_sessions(w.start, -(model.train_sessions + model.refit_every)) if model else w.start
    # The feature sets the strategy reads, as the asset reads them (the default and presets/sets).
    sets = load_feature_sets(w.feature_store.preset(), settings.feature_sets_dir())
    feats, dates = read_features(con, sets, spec.features_used(), load_from, w.end, universe)
    labels = read_slice(con, LABELS, load_from, w.end, symbols=universe)
    prev = read_previous_weights(con, spec.name, w.start)
    return lambda: targets_partition(
        feats, labels, spec, universe, w.registry.tickers, prev, w.start, w.end, feature_dates=dates
    )


def _backtest(con, w: Window, spec):
    """The step's three core calls: the backtest, the KPIs over the history with it, the report."""
    from quantlab_assets.backtest_engine.core import step as bt
    from quantlab_assets.backtest_engine.core.store import read_equity_history, read_resume_state
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.common.warehouse import read_strategy_slice
    from quantlab_assets.data_curator.core.bars import read_bars
    from quantlab_assets.strategy_lab.assets import strategy_key
    from quantlab_assets.strategy_lab.core.construct import universe_of
    from quantlab_assets.strategy_lab.core.schema import TARGETS

    name = spec.name
    state, last_state = read_resume_state(con, name, w.start)
    inputs = bt.BacktestInputs(
        bars=read_bars(con, shift_sessions(w.start, -1), w.end, symbols=universe_of(w.registry, spec)),
        targets=read_strategy_slice(con, TARGETS, name, w.start, w.end),
        state=state,
        last_state_date=last_state,
        targets_asset=strategy_key(name, "targets").to_user_string(),
        backtest_asset=strategy_key(name, "backtest").to_user_string(),
    )
    stored = read_equity_history(con, name, w.end)  # the run's candidate replaces [start, end] below

    def call():
        part = bt.backtest_partition(inputs, spec, w.start, w.end)
        history = bt.with_candidate(stored, part.equity, w.start)
        kpis = bt.kpis_partition(history, w.start, w.end, backtest_asset=inputs.backtest_asset)
        return bt.backtest_report(spec, history, kpis.table, part.trades, part.skipped, w.start, w.end)

    return call


def _supervision(con, w: Window, spec):
    from quantlab_assets.portfolio_supervisor.core.step import supervision_partition
    from quantlab_assets.portfolio_supervisor.core.store import latest_overrides, read_inputs
    from quantlab_assets.strategy_lab.assets import strategy_key

    made_by = {s: strategy_key(spec.name, s).to_user_string() for s in ("targets", "backtest_kpis")}
    limits = w.supervisor.rules().for_strategy(spec.name)
    inputs, overrides = read_inputs(con, spec.name, w.start, w.end), latest_overrides(con, spec.name, w.start, w.end)
    return lambda: supervision_partition(inputs, spec, limits, overrides, w.start, w.end, made_by)


def _tearsheet(con, w: Window, spec):
    from quantlab_assets.analytics.core.tearsheet import build_tearsheet, tearsheet_html, tearsheet_markdown
    from quantlab_assets.analytics.tearsheet_assets import benchmark_returns
    from quantlab_assets.backtest_engine.core.schema import BACKTEST_EQUITY, BACKTEST_POSITIONS, BACKTEST_TRADES
    from quantlab_assets.backtest_engine.core.store import FIRST_SESSION
    from quantlab_assets.common.warehouse import read_strategy_slice

    equity, positions, trades = (
        read_strategy_slice(con, t, spec.name, FIRST_SESSION, w.end)
        for t in (BACKTEST_EQUITY, BACKTEST_POSITIONS, BACKTEST_TRADES)
    )
    bench = benchmark_returns(con, spec, equity) if len(equity) else None

    def call():
        sheet = build_tearsheet(spec.name, equity, positions, trades, bench, spec.benchmark)
        return tearsheet_html(sheet), tearsheet_markdown(sheet)

    return call


# Step key (as the run's log names it) -> the row that reads its inputs and returns its core call.
CORES: dict[str, Core] = {
    "ohlcv": _ohlcv,
    "features": _features,
    "labels": _labels,
    "feature_ic": _feature_ic,
}
STRATEGY_CORES: dict[str, Core] = {
    "{s}__{s}_targets": _targets,
    "{s}__backtest": _backtest,
    "{s}__supervision": _supervision,
    "{s}__{s}_tearsheet": _tearsheet,
}


def steps_and_cores(specs) -> dict[str, Callable]:
    """Every step's row in the run's order: the strategy rows bound to their spec."""
    from functools import partial

    rows: dict[str, Callable] = dict(CORES)
    for pattern, row in STRATEGY_CORES.items():
        rows.update({pattern.format(s=spec.name): partial(row, spec=spec) for spec in specs})
    rows["strategy_leaderboard"] = partial(_leaderboard, specs=specs)
    return rows


def window(first: str, last: str) -> tuple[date, date]:
    """Calendar dates [first, last] a ``--partition-range first...last`` run owns (partition_dates)."""
    from quantlab_assets.partitions import trading_day_partitions

    lo = trading_day_partitions.time_window_for_partition_key(first)
    hi = trading_day_partitions.time_window_for_partition_key(last)
    return lo.start.date(), (hi.end - timedelta(days=1)).date()


def core_seconds(first: str, last: str) -> dict[str, dict[str, float]]:
    """{step: {"read": s, "core": s}} over the range, in this process's QUANTLAB_* environment."""
    from quantlab_assets.common import settings
    from quantlab_assets.common.warehouse import connect
    from quantlab_assets.data_curator.resources import MarketDataResource
    from quantlab_assets.definitions import STRATEGIES
    from quantlab_assets.feature_store.resources import FeatureStoreResource
    from quantlab_assets.portfolio_supervisor.resources import SupervisorResource

    market_data = MarketDataResource()
    start, end = window(first, last)
    w = Window(start, end, market_data.registry(), market_data, FeatureStoreResource(), SupervisorResource())
    out = {}
    for step, row in steps_and_cores(STRATEGIES).items():
        t0 = time.perf_counter()
        with connect(settings.db_path()) as con:
            call = row(con, w)
        t1 = time.perf_counter()
        call()
        out[step] = {"read": t1 - t0, "core": time.perf_counter() - t1}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, required=True, help="a run directory kept by bench_chain.py --keep")
    parser.add_argument("--range", required=True, metavar="FIRST...LAST", help="the run's --partition-range")
    parser.add_argument("--strategies", type=Path, default=ROOT / "strategies")
    parser.add_argument("--json", action="store_true", help="print {step: {read, core}} as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # the cores' NaN figures on short histories
    # Before any quantlab import: the definitions read the strategies and the preset when loaded.
    os.environ.update(lab_environ(args.run_dir.resolve(), args.strategies.resolve()))
    first, last = args.range.split("...")
    seconds = core_seconds(first, last)
    if args.json:
        print(json.dumps(seconds))
        return
    print("| step | inputs read (s) | core alone (s) |\n|---|---|---|")
    for step, s in seconds.items():
        print(f"| {step} | {s['read']:.2f} | {s['core']:.2f} |")
    print(f"\nmachine: {os.cpu_count()} cpus, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
