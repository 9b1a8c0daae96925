"""``quantlab`` (or ``python -m quantlab_assets.batch_orchestrator.cli``): the orchestrator's CLI.

Commands:
  plan --select SEL (--partition P | --partition-range A...B)
                     dry run: the steps, assets, checks and partitions a materialization would run
  runs [--limit N]   recent runs from Dagster's storage: status, duration, partitions, failed step, error;
                     success rate and mean run time per job
  last-run           the latest run in detail: steps, check results, artifacts
  leaderboard        every strategy's Sharpe, return, drawdown and approval rate (stored figures)
  rerun RUN_ID       re-execute a failed run from its failure (failed and skipped steps only); the
                     id's prefix as `runs` prints it is enough; a run whose process died is marked
                     failed first
  override --strategy S --date D --status approved|rejected|needs_review --reason "..." [--by NAME] [--apply]
                     a person's decision on a strategy's day, appended to the override log
  overrides [--strategy S]
                     the override log
  warehouse backup [--keep N] | verify [--snapshots] | restore [SNAPSHOT]
                     snapshots of the warehouse (batch_orchestrator/warehouse_cli.py, docs/operations.md)
"""

from __future__ import annotations

import argparse
import os
import sys

import duckdb

from quantlab_assets.batch_orchestrator.approvals_cli import cmd_leaderboard, cmd_override, cmd_overrides
from quantlab_assets.batch_orchestrator.cli_input import CliError, partition_args
from quantlab_assets.batch_orchestrator.delta_cli import register_delta
from quantlab_assets.batch_orchestrator.runs_cli import (
    check_lines,
    cmd_last_run,
    cmd_plan,
    cmd_rerun,
    cmd_runs,
    with_instance,
)
from quantlab_assets.batch_orchestrator.warehouse_cli import register as register_warehouse
from quantlab_assets.common import settings
from quantlab_assets.common.warehouse import WarehouseError
from quantlab_assets.execution.cli import register as register_execution
from quantlab_assets.research.cli import register as register_research

__all__ = [
    "CliError",
    "build_parser",
    "check_lines",
    "cmd_last_run",
    "cmd_leaderboard",
    "cmd_override",
    "cmd_overrides",
    "cmd_plan",
    "cmd_rerun",
    "cmd_runs",
    "main",
]


def _plan(args) -> int:
    tags, label = partition_args(args)
    return cmd_plan(args.select, tags, label)


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The parser and its subparsers; a command is a subparser with ``set_defaults(handler=f)``,
    ``f(args) -> exit code`` (another module can add its commands to the same subparsers)."""
    parser = argparse.ArgumentParser(
        prog="quantlab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    register_research(sub)  # backtest, sweep, promote, experiments (quantlab_assets/research/cli.py)
    register_warehouse(sub)  # warehouse backup / verify / restore (batch_orchestrator/warehouse_cli.py)
    register_execution(sub)  # halt, resume, execution status|resolve (quantlab_assets/execution/cli.py)
    register_delta(sub)  # delta tables/history/restore (batch_orchestrator/delta_cli.py, issue 27)
    runs = sub.add_parser("runs", help="recent runs with status, duration, partitions, errors")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(handler=with_instance(lambda instance, args: cmd_runs(instance, args.limit)))
    last = sub.add_parser("last-run", help="the latest run: steps, checks, artifacts")
    last.set_defaults(handler=with_instance(lambda instance, args: cmd_last_run(instance)))
    plan = sub.add_parser("plan", help="dry run: what a materialization would run, in order")
    plan.add_argument("--select", required=True, help="Dagster asset selection, e.g. 'ohlcv*' or 'key:features'")
    plan.add_argument("--partition")
    plan.add_argument("--partition-range", help="START...END")
    plan.set_defaults(handler=_plan)
    rerun = sub.add_parser("rerun", help="re-execute a failed run from its failure")
    rerun.add_argument("run_id", help="the run id or its first characters (as `quantlab runs` prints it)")
    rerun.set_defaults(handler=with_instance(lambda instance, args: cmd_rerun(instance, args.run_id)))
    over = sub.add_parser("override", help="record a person's decision on a strategy's day")
    over.add_argument("--strategy", required=True)
    over.add_argument("--date", required=True)
    over.add_argument("--status", required=True, choices=["approved", "rejected", "needs_review"])
    over.add_argument("--reason", required=True)
    over.add_argument("--by", help="who decided (default: the login name)")
    over.add_argument("--apply", action="store_true", help="re-run the supervision of that day now")
    over.set_defaults(handler=cmd_override)
    board = sub.add_parser("leaderboard", help="every strategy's Sharpe, return, drawdown and approval rate")
    board.set_defaults(handler=lambda args: cmd_leaderboard())
    overs = sub.add_parser("overrides", help="the append-only override log")
    overs.add_argument("--strategy")
    overs.set_defaults(handler=lambda args: cmd_overrides(args.strategy))
    return parser, sub


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (CliError, WarehouseError, settings.SettingError) as exc:
        print(f"quantlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:  # a read that fails mid-command: name the file, no traceback
        print(
            f"quantlab {args.command}: reading the warehouse {settings.db_path()} failed "
            f"({' '.join(str(exc).split())[:200]}): run `quantlab warehouse verify`",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        # `quantlab runs | head`: the reader stopped reading; what was asked for was printed.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
