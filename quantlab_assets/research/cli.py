"""The research commands of ``quantlab`` (registered by ``batch_orchestrator.cli``):

backtest STRATEGY.yaml --start D --end D [--set FIELD.PATH=VALUE ...] [--trades N] [--equity-csv PATH]
                   run a strategy on the warehouse's stored data in memory and print its KPIs
sweep SWEEP.yaml   run a sweep's variants in memory and print its leaderboard (the Dagster
                   asset ``<sweep>/experiment_results`` is the recorded way)
promote SWEEP VARIANT [--out PATH]
                   write a sweep variant as a strategy file
experiments [--limit N]
                   recorded research backtests and sweeps (``backtest --record``, sweep assets)
experiment show ID re-run a recorded experiment and say whether the numbers still match
models compare     model kinds side by side on the same features, labels and range (qlib's table)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from quantlab_assets.backtest_engine.core.kpis import first_invested
from quantlab_assets.strategy_lab.core.spec import StrategyError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the research subcommands; each sets ``handler``."""
    bt = sub.add_parser("backtest", help="backtest a strategy file on stored data, in memory")
    bt.add_argument("strategy", help="strategy YAML file")
    bt.add_argument("--start", required=True)
    bt.add_argument("--end", required=True)
    bt.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD.PATH=VALUE",
        help="override a field, e.g. --set selection.k=20 (repeatable)",
    )
    bt.add_argument("--trades", type=int, default=10, help="print the last N trades (default 10)")
    bt.add_argument("--equity-csv", help="also write the daily equity to this CSV file")
    bt.add_argument("--record", action="store_true", help="record the run in the experiments table")
    bt.set_defaults(handler=cmd_backtest)
    sw = sub.add_parser("sweep", help="run a sweep file's variants in memory and print the leaderboard")
    sw.add_argument("sweep", help="sweep YAML file")
    sw.set_defaults(handler=cmd_sweep)
    pr = sub.add_parser("promote", help="write a sweep variant as a strategy file")
    pr.add_argument("sweep", help="sweep YAML file (or its name under sweeps/)")
    pr.add_argument("variant", help="variant id, e.g. v007")
    pr.add_argument("--out", help="strategy file to write (default strategies/<sweep>_<variant>.yaml)")
    pr.set_defaults(handler=cmd_promote)
    ex = sub.add_parser("experiments", help="recorded research backtests and sweeps")
    ex.add_argument("--limit", type=int, default=30)
    ex.set_defaults(handler=cmd_experiments)
    one = sub.add_parser("experiment", help="one recorded experiment")
    one_sub = one.add_subparsers(dest="experiment_command", required=True)
    show = one_sub.add_parser("show", help="re-run it and compare with the recorded numbers")
    show.add_argument("id")
    show.set_defaults(handler=cmd_experiment_show)
    from quantlab_assets.research.models_cli import register_models

    register_models(sub)  # models compare (docs/models.md)


# How each since-start figure reads: percent, a ratio, a count or money.
_PERCENT = {"total_return", "cagr", "annual_volatility", "max_drawdown", "hit_rate", "turnover", "excess_return"}
_COUNT = {"sessions", "drawdown_duration"}
_MONEY = {"pnl_gross", "pnl_net", "costs_paid"}


def kpi_lines(kpis: dict[str, float], since, benchmark: str = "equal_weight") -> list[str]:
    """The since-start figures as a reader wants them: percentages, ratios to 2 decimals, money
    with thousands separators, and the session they count from (the first invested one);
    ``excess_return`` and ``information_ratio`` are against the spec's ``benchmark``."""
    against = "equal-weight benchmark" if benchmark == "equal_weight" else f"benchmark {benchmark}"
    head = (
        f"since-start figures from {since.date()} (first invested session); vs = {against}"
        if since is not None
        else "EMPTY BOOK: the strategy held nothing over the range; no since-start figure"
    )
    lines = [head]
    for key, value in kpis.items():
        label = {"excess_return": "excess_return (vs)", "information_ratio": "information_ratio (vs)"}.get(key, key)
        lines.append(f"  {label:<24} {figure_text(key, value):>14}")
    return lines


def figure_text(key: str, value: float) -> str:
    """One figure as a reader wants it: percent, a count, money or a ratio to 2 decimals."""
    if value != value:  # NaN
        return "n/a"
    if key in _PERCENT:
        return f"{value:.2%}"
    if key in _COUNT or key == "trades":
        return f"{value:,.0f}"
    if key in _MONEY or key == "final_equity":
        return f"{value:,.2f}"
    return f"{value:.2f}"


def results_lines(results: dict) -> list[str]:
    """A recorded experiment's results: formatted figures when they are numbers (a backtest),
    else the JSON (a sweep's nested results)."""
    import json

    if results and all(isinstance(v, int | float) for v in results.values()):
        return [f"  {k:<24} {figure_text(k, float(v)):>14}" for k, v in sorted(results.items())]
    return [f"  {json.dumps(results, sort_keys=True)[:2000]}"]


def cmd_backtest(args) -> int:
    from quantlab_assets import research

    try:
        if args.equity_csv:  # before the backtest runs, not after
            _check_writable_file(Path(args.equity_csv), "--equity-csv")
        out = research.backtest(args.strategy, args.start, args.end, overrides=args.set)
    except (StrategyError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = out.spec
    from quantlab_assets.portfolio_supervisor.resources import strategy_conflicts

    for message in strategy_conflicts([spec], {spec.name: args.strategy}).get(spec.name, []):
        print(f"warning: {message}", file=sys.stderr)
    print(
        f"{spec.name}: {out.start.date()} .. {out.end.date()}, {len(out.universe)} symbols, "
        f"{len(out.equity)} sessions, {len(out.trades)} trades"
        + (f"  (overrides: {', '.join(args.set)})" if args.set else "")
    )
    print(f"final equity {out.final_equity:,.2f} from {spec.capital:,.2f}")
    for line in kpi_lines(out.kpis_last, first_invested(out.equity), spec.benchmark):
        print(line)
    if first_invested(out.equity) is None:  # why, in numbers (the targets asset's own warning)
        print(research.empty_book_reason(out))
    if args.trades and len(out.trades):
        print(out.trades.tail(args.trades).to_string(index=False))
    if args.equity_csv:
        try:
            out.equity.to_csv(args.equity_csv, index=False)
        except OSError as exc:
            print(f"error: --equity-csv {args.equity_csv}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"equity written to {args.equity_csv}")
    if args.record:
        from quantlab_assets.research.experiments import backtest_results, experiment_row, record

        row = experiment_row(
            "backtest",
            spec.name,
            spec.model_dump(mode="json"),
            out.start,
            out.end,
            _data_version(spec, out),
            backtest_results(out),
        )
        with _writer() as con:
            print(f"recorded experiment {record(con, row)}")
            wf = out.targets.walk_forward
            if wf is not None:  # a model strategy: each trained model too
                from quantlab_assets.research.experiments import model_rows

                # Recorded at the backtest's time: the backtest and its models are one recording.
                data_ver, when = str(row["data_version"].iloc[0]), row["recorded_at"].iloc[0]
                models = model_rows(spec.name, spec.signal.model, wf, data_ver, when)
                if len(models):
                    record(con, models)
                print(f"recorded {len(models)} trained models (kind model)")
    return 0


def _check_writable_file(path: Path, flag: str) -> None:
    """``ValueError`` naming ``flag`` and the path when a file cannot be written there."""
    from quantlab_assets.common.artifacts import unwritable

    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {path}: the folder {path.parent} does not exist; create it first")
    why = unwritable(path.parent)
    if why or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{flag} {path}: cannot be written ({why or 'the file is read-only'})")


def _data_version(spec, out) -> str:
    from quantlab_assets import research
    from quantlab_assets.research.api import history_start
    from quantlab_assets.research.experiments import data_version

    # The data the backtest read: a model's training history before the start included (as a re-run reads it).
    history_from = history_start(spec, out.start)
    return data_version(
        research.load_data(
            out.start, out.end, spec.features_used(), history_from=history_from, labels=spec.signal.kind == "model"
        )
    )


def _writer():
    """A short-lived read-write connection (only for recording)."""
    from quantlab_assets.common import settings
    from quantlab_assets.common.warehouse import connect

    return connect(settings.db_path(), create=False)  # only the ingest creates the warehouse


def _reader():
    from quantlab_assets.common import settings
    from quantlab_assets.common.warehouse import connect

    path = settings.db_path()
    if not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist (set QUANTLAB_DB)")
    return connect(path, read_only=True)


def cmd_experiments(args) -> int:
    from quantlab_assets.research.experiments import list_experiments, results_line

    try:
        with _reader() as con:
            rows = list_experiments(con)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if rows.empty:
        print("no experiments recorded (quantlab backtest ... --record, or materialize a sweep)")
        return 0
    for r in rows.tail(args.limit).itertuples():
        print(
            f"{r.id}  {r.kind:<8} {r.name:<24} {r.start:%Y-%m-%d}..{r.end:%Y-%m-%d}  "
            f"{results_line(r.kind, r.results)}  code {r.code_version}  data {r.data_version}  "
            f"recorded {r.recorded_at:%Y-%m-%d %H:%M:%S}"
        )
    return 0


def cmd_experiment_show(args) -> int:
    from quantlab_assets.research.experiments import code_version, get
    from quantlab_assets.research.rerun import rerun

    try:
        with _reader() as con:
            exp = get(con, args.id)
    except (FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{exp.id}: {exp.kind} {exp.name}, {exp.start.date()}..{exp.end.date()}")
    print("recorded results:")
    print("\n".join(results_lines(exp.results)))
    try:
        now, data_now, diffs = rerun(exp)
    except ValueError as exc:  # a model row, or data that no longer covers the range
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"code version: recorded {exp.code_version}, now {code_version()}")
    print(f"data version: recorded {exp.data_version}, now {data_now}")
    if diffs:
        print(f"numbers DIFFER ({len(diffs)}):")
        for d in diffs[:30]:
            print(f"  {d}")
        return 1
    print("numbers match: the re-run reproduces every recorded figure exactly")
    return 0


def cmd_sweep(args) -> int:
    from quantlab_assets import research
    from quantlab_assets.common import settings
    from quantlab_assets.research.sweep_report import leaderboard_markdown
    from quantlab_assets.research.sweep_run import run_sweep
    from quantlab_assets.research.sweep_spec import load_sweep, sweep_features, sweep_history_from
    from quantlab_assets.research.sweep_store import store_sweep

    try:
        sweep = load_sweep(args.sweep)
        print(f"sweep {sweep.name}: {len(sweep.variants):,} variants (cap {settings.sweep_max_variants():,})")
        model = any(v.spec.signal.kind == "model" for v in sweep.variants)
        data = research.load_data(
            sweep.start, sweep.end, sweep_features(sweep), history_from=sweep_history_from(sweep), labels=model
        )
        result = run_sweep(sweep, data, say=lambda line: print(line, flush=True))
    except (StrategyError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(leaderboard_markdown(sweep, result))
    # Recorded like the sweep asset's run: experiment_results and experiments (quantlab experiments).
    with _writer() as con:
        exp_id, _ = store_sweep(con, sweep, result, data)
    print(f"recorded experiment {exp_id}")
    return 0


def cmd_promote(args) -> int:
    from quantlab_assets.research.sweep_report import promote
    from quantlab_assets.research.sweep_spec import find_sweep, load_sweep

    try:
        sweep = load_sweep(find_sweep(args.sweep))
        path = promote(sweep, args.variant, Path(args.out) if args.out else None)
    except (StrategyError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
