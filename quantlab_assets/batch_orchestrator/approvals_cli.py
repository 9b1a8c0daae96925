"""The approvals' human side on the command line: ``override`` (a person's decision on a strategy's
day, appended to the log, ``--apply`` re-running that day's supervision), ``overrides`` (the log)
and ``leaderboard`` (every strategy's stored figures and approval rate).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from quantlab_assets.batch_orchestrator.cli_input import CliError, partition_day
from quantlab_assets.batch_orchestrator.runs_cli import step_failure
from quantlab_assets.common.text import printable, refuse_control
from quantlab_assets.common.warehouse import WarehouseError


def _known_strategy(name: str) -> str:
    from quantlab_assets.strategy_lab.core.spec import discover
    from quantlab_assets.strategy_lab.resources import strategies_dir

    specs, errors = discover(strategies_dir())
    names = sorted(s.name for s in specs)
    if name in names:
        return name
    invalid = [msg for path, msg in errors.items() if Path(path).stem == name]
    if invalid:
        raise CliError(f"--strategy {name}: its strategy file is invalid: {invalid[0]}")
    raise CliError(f"--strategy {name}: no such strategy (strategies: {', '.join(names) or 'none'})")


def cmd_override(args) -> int:
    import getpass

    from quantlab_assets.portfolio_supervisor.assets import approvals_key, approved_key
    from quantlab_assets.portfolio_supervisor.core.store import record_override
    from quantlab_assets.resources import WarehouseResource

    # Validated before anything is appended: the log is append-only, a wrong line stays forever.
    strategy, day = _known_strategy(args.strategy), partition_day(args.date, "--date", session=True)
    who = (args.by or getpass.getuser()).strip()
    if not args.reason.strip():
        raise CliError("--reason: an override needs a reason")
    if not who:
        raise CliError("--by: an override needs the name of who decided")
    try:
        refuse_control(args.reason, "--reason")
        refuse_control(who, "--by", max_length=200)
    except ValueError as exc:
        raise CliError(f"{exc}; nothing recorded") from None
    args.strategy, args.date = strategy, day
    instance = None
    if args.apply:  # before recording: an override that cannot be applied is refused whole
        try:
            instance = dg.DagsterInstance.get()
        except Exception as exc:  # noqa: BLE001 - e.g. DAGSTER_HOME not set
            raise CliError(
                f"--apply: nothing recorded, Dagster's instance is not available: {_one_line(exc)}"
            ) from None
    try:
        with WarehouseResource().get_connection() as con:
            record_override(con, args.strategy, args.date, args.status, args.reason, who)
    except (ValueError, OSError, duckdb.Error, WarehouseError) as exc:
        if instance is not None:
            instance.dispose()
        raise CliError(f"nothing recorded: {_one_line(exc)}") from None
    print(f"override recorded: {args.strategy} {args.date} -> {args.status} by {who}: {args.reason}")
    if instance is None:
        print(
            "apply it by re-materializing the supervision of that day:\n"
            "  dagster asset materialize -m quantlab_assets.definitions "
            f"--select '{approvals_key(args.strategy).to_user_string()}' "
            f"--partition {args.date}\n(or pass --apply)"
        )
        return 0
    keys = [approvals_key(args.strategy), approved_key(args.strategy)]
    with instance:
        try:
            from quantlab_assets.definitions import defs

            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, partition_key=args.date, asset_selection=keys, raise_on_error=False
            )
        except Exception as exc:  # noqa: BLE001 - the override is recorded; say why the re-run did not start
            print(
                f"the override is recorded, but the supervision re-run could not start: {_one_line(exc)}",
                file=sys.stderr,
            )
            return 2
        step, error = step_failure(instance, result.run_id) if not result.success else ("", "")
    print(
        f"supervision of {args.strategy} {args.date} re-run {result.run_id}: "
        f"{'SUCCESS' if result.success else f'FAILURE in {step}: {error}'}"
    )
    return 0 if result.success else 2


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def cmd_overrides(strategy: str | None) -> int:
    from quantlab_assets.common.warehouse import ensure_table
    from quantlab_assets.portfolio_supervisor.core.schema import OVERRIDES
    from quantlab_assets.resources import WarehouseResource

    with WarehouseResource().get_connection() as con:
        ensure_table(con, OVERRIDES)
        rows = con.execute(
            "SELECT * FROM approval_overrides WHERE ? IS NULL OR strategy = ? ORDER BY decided_at", [strategy, strategy]
        ).df()
    if rows.empty:
        print("no overrides")
    for r in rows.itertuples():
        print(  # escaped: rows stored before control characters were refused must not forge lines
            f"{r.decided_at:%Y-%m-%d %H:%M:%S}  {printable(r.strategy)}  {r.date:%Y-%m-%d}  -> {r.status}  "
            f"by {printable(r.decided_by)}: {printable(r.reason)}"
        )
    return 0


def cmd_leaderboard() -> int:
    """Every strategy's stored figures side by side, as of the last stored session."""
    from quantlab_assets.analytics.core.leaderboard import leaderboard, leaderboard_text
    from quantlab_assets.backtest_engine.core.schema import BACKTEST_EQUITY, BACKTEST_KPIS
    from quantlab_assets.backtest_engine.core.store import FIRST_SESSION
    from quantlab_assets.common.warehouse import read_slice
    from quantlab_assets.portfolio_supervisor.core.schema import APPROVALS
    from quantlab_assets.resources import WarehouseResource

    today = datetime.now().date()
    with WarehouseResource().get_connection() as con:
        kpis = read_slice(con, BACKTEST_KPIS, FIRST_SESSION, today)
        equity = read_slice(
            con, BACKTEST_EQUITY, FIRST_SESSION, today, columns=["date", "strategy", "ret", "gross_exposure"]
        )
        approvals = read_slice(con, APPROVALS, FIRST_SESSION, today, columns=["date", "strategy", "status", "gross"])
    if not len(equity):
        print("no backtest stored yet: materialize the chain first (bash scripts/demo.sh)")
        return 1
    print(leaderboard_text(leaderboard(kpis, equity, approvals, equity["date"].max())))
    return 0
