"""The research commands of ``quantlab`` (registered by ``batch_orchestrator.cli``):

  backtest STRATEGY.yaml --start D --end D [--set FIELD.PATH=VALUE ...] [--trades N] [--equity-csv PATH]
                     run a strategy on the warehouse's stored data in memory and print its KPIs
  sweep SWEEP.yaml   run a sweep's variants in memory and print its leaderboard (the Dagster
                     asset ``<sweep>/experiment_results`` is the recorded way)
  promote SWEEP VARIANT [--out PATH]
                     write a sweep variant as a strategy file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quantlab_assets.strategy_lab.core.spec import StrategyError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the research subcommands; each sets ``handler``."""
    bt = sub.add_parser("backtest", help="backtest a strategy file on stored data, in memory")
    bt.add_argument("strategy", help="strategy YAML file")
    bt.add_argument("--start", required=True)
    bt.add_argument("--end", required=True)
    bt.add_argument("--set", action="append", default=[], metavar="FIELD.PATH=VALUE",
                    help="override a field, e.g. --set selection.k=20 (repeatable)")
    bt.add_argument("--trades", type=int, default=10, help="print the last N trades (default 10)")
    bt.add_argument("--equity-csv", help="also write the daily equity to this CSV file")
    bt.set_defaults(handler=cmd_backtest)
    sw = sub.add_parser("sweep", help="run a sweep file's variants in memory and print the leaderboard")
    sw.add_argument("sweep", help="sweep YAML file")
    sw.set_defaults(handler=cmd_sweep)
    pr = sub.add_parser("promote", help="write a sweep variant as a strategy file")
    pr.add_argument("sweep", help="sweep YAML file (or its name under sweeps/)")
    pr.add_argument("variant", help="variant id, e.g. v007")
    pr.add_argument("--out", help="strategy file to write (default strategies/<sweep>_<variant>.yaml)")
    pr.set_defaults(handler=cmd_promote)


def cmd_backtest(args) -> int:
    from quantlab_assets import research

    try:
        out = research.backtest(args.strategy, args.start, args.end, overrides=args.set)
    except (StrategyError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = out.spec
    print(f"{spec.name}: {out.start.date()} .. {out.end.date()}, {len(out.universe)} symbols, "
          f"{len(out.equity)} sessions, {len(out.trades)} trades"
          + (f"  (overrides: {', '.join(args.set)})" if args.set else ""))
    print(f"final equity {out.final_equity:,.2f} from {spec.capital:,.2f}")
    for key, value in out.kpis_last.items():
        print(f"  {key:<20} {value: .6g}")
    if args.trades and len(out.trades):
        print(out.trades.tail(args.trades).to_string(index=False))
    if args.equity_csv:
        out.equity.to_csv(args.equity_csv, index=False)
        print(f"equity written to {args.equity_csv}")
    return 0


def cmd_sweep(args) -> int:
    from quantlab_assets.research.sweep import load_sweep, run_sweep_from_warehouse, leaderboard_markdown

    try:
        sweep = load_sweep(args.sweep)
        result = run_sweep_from_warehouse(sweep)
    except (StrategyError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(leaderboard_markdown(sweep, result))
    return 0


def cmd_promote(args) -> int:
    from quantlab_assets.research.sweep import find_sweep, load_sweep, promote

    try:
        sweep = load_sweep(find_sweep(args.sweep))
        path = promote(sweep, args.variant, Path(args.out) if args.out else None)
    except (StrategyError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
