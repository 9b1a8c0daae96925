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
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from quantlab_assets.batch_orchestrator.delta_cli import register_delta
from quantlab_assets.batch_orchestrator.run_health import fail_dead_runs, mark_failed, worker_health
from quantlab_assets.batch_orchestrator.warehouse_cli import register as register_warehouse
from quantlab_assets.common import settings
from quantlab_assets.common.text import printable, refuse_control
from quantlab_assets.common.warehouse import WarehouseError
from quantlab_assets.execution.cli import register as register_execution
from quantlab_assets.research.cli import register as register_research

_RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


class CliError(Exception):
    """Refused input: printed as one line, nothing done."""


def _day(text: str, flag: str, *, session: bool = False) -> str:
    """A partition key Dagster would accept: a real date written YYYY-MM-DD, a weekday, not before
    the first partition nor after today's; with ``session`` also an exchange session."""
    from quantlab_assets.common.calendar import is_trading_day
    from quantlab_assets.partitions import PARTITION_FMT, trading_day_partitions

    try:
        day = datetime.strptime(text, PARTITION_FMT).date()
    except ValueError:
        raise CliError(f"{flag} {text!r}: not a date (YYYY-MM-DD)") from None
    key = day.isoformat()
    first, last = trading_day_partitions.get_first_partition_key(), trading_day_partitions.get_last_partition_key()
    if first is None or last is None:
        raise CliError(f"no trading-day partition exists yet ({settings.START_DATE} is too recent)")
    if key > last:
        raise CliError(f"{flag} {key}: in the future (the latest partition is {last})")
    if key < first:
        raise CliError(f"{flag} {key}: before the first partition {first} (QUANTLAB_START_DATE)")
    if day.weekday() >= 5:
        raise CliError(f"{flag} {key}: a {day:%A}, not a trading-day partition")
    if session and not is_trading_day(day):
        raise CliError(f"{flag} {key}: not a trading session (exchange holiday)")
    return key


def _partitions(run) -> str:
    tags = run.tags
    if _RANGE[0] in tags:
        return f"{tags[_RANGE[0]]}...{tags[_RANGE[1]]}"
    return tags.get("dagster/partition", "-")


def _duration(record) -> float | None:
    if record.start_time and record.end_time:
        return record.end_time - record.start_time
    return None


def _failure(instance, run_id: str) -> tuple[str, str]:
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.event_specific_data.error if event.event_specific_data else None
        # Dagster wraps the user's exception; the root cause says what actually went wrong.
        while error is not None and error.cause is not None:
            error = error.cause
        message = " ".join(error.message.split()) if error else ""
        # "package.module.RulesError: ..." -> "RulesError: ..."
        message = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", message)
        return event.step_key or "-", message[:240]
    # No step failed: the run itself did (e.g. its process died and it was marked failed).
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        return "-", " ".join((record.dagster_event.message or "").split())[:240]
    return "-", ""


def cmd_runs(instance: dg.DagsterInstance, limit: int) -> int:
    records = instance.get_run_records(limit=limit)
    if not records:
        print("no runs yet in", instance.root_directory)
        return 0
    print(f"{'run':10} {'status':9} {'job':16} {'partitions':23} {'secs':>7}  failed step / error")
    per_job: dict[str, list] = defaultdict(list)
    for rec in records:
        run = rec.dagster_run
        secs = _duration(rec)
        step, err = _failure(instance, run.run_id) if run.status == dg.DagsterRunStatus.FAILURE else ("", "")
        print(
            f"{run.run_id[:8]:10} {run.status.value:9} {run.job_name[:16]:16} {_partitions(run):23} "
            f"{secs if secs is not None else float('nan'):7.1f}  {step} {err}".rstrip()
        )
        per_job[run.job_name].append((run.status, secs))
    print("\nper job (these runs): success rate, mean run time")
    for job, items in sorted(per_job.items()):
        done = [s for s in items if s[0] in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)]
        ok = sum(1 for s in done if s[0] == dg.DagsterRunStatus.SUCCESS)
        times = [t for _, t in done if t is not None]
        rate = f"{ok / len(done):.0%}" if done else "-"
        mean = f"{sum(times) / len(times):.1f}s" if times else "-"
        print(f"  {job}: {ok}/{len(done)} succeeded ({rate}), mean {mean}")
    return 0


def cmd_last_run(instance: dg.DagsterInstance) -> int:
    records = instance.get_run_records(limit=1)
    if not records:
        print("no runs yet in", instance.root_directory)
        return 1
    rec = records[0]
    run = rec.dagster_run
    secs = _duration(rec)
    print(
        f"run {run.run_id}  {run.status.value}  job {run.job_name}  partitions {_partitions(run)}"
        + (f"  {secs:.1f}s" if secs is not None else "")
    )
    step_events = {
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    }
    checks: dict[str, list] = defaultdict(list)
    for record in instance.all_logs(run.run_id, of_type=step_events):
        event = record.dagster_event
        assert event is not None  # of_type filters Dagster events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = event.event_specific_data
            assert isinstance(ev, dg.AssetCheckEvaluation)  # what an ASSET_CHECK_EVALUATION event carries
            checks[f"{ev.asset_key.to_user_string()}.{ev.check_name}"].append(ev)
        else:
            print(f"  step {event.step_key}: {event.event_type_value}")
    for line in check_lines(checks):
        print(line)
    run_dir = settings.artifacts_root() / "runs" / run.run_id
    if run_dir.exists():
        print(f"artifacts: {run_dir}")
        for path in sorted(run_dir.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(run_dir)}")
    return 0 if run.status == dg.DagsterRunStatus.SUCCESS else 2


def check_lines(checks: dict[str, list]) -> list[str]:
    """One line per check that did not pass everywhere (its verdict on how many partitions, the
    first one and its description), and one line counting the checks that passed on every
    partition: a run over 65 partitions reports each check once per partition."""
    lines, passed = [], 0
    for name, evs in checks.items():
        bad = [e for e in evs if not e.passed]
        if not bad:
            passed += 1
            continue
        errors = [e for e in bad if e.severity == dg.AssetCheckSeverity.ERROR]
        worst = errors or bad
        verdict = "FAIL" if errors else "warn"
        where = f" on {len(worst)} of {len(evs)} partitions" if len(evs) > 1 else ""
        first = f" (first {worst[0].partition})" if worst[0].partition and len(evs) > 1 else ""
        lines.append(f"  check {name}: {verdict}{where}{first}  {worst[0].description or ''}")
    if checks:
        lines.insert(0, f"  checks: {passed} of {len(checks)} passed on every partition")
    return lines


def _partition_args(args) -> tuple[dict, str]:
    if args.partition_range:
        start, _, end = args.partition_range.partition("...")
        if not end:
            raise CliError("--partition-range takes START...END")
        start, end = _day(start, "--partition-range start"), _day(end, "--partition-range end")
        if start > end:
            raise CliError(f"--partition-range {start}...{end}: the start is after the end")
        return (
            {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
            f"{start}...{end}",
        )
    if args.partition:
        key = _day(args.partition, "--partition")
        return {"dagster/partition": key}, key
    raise CliError("give --partition or --partition-range")


def cmd_plan(select: str, tags: dict, label: str) -> int:
    """Resolves the selection and builds Dagster's own execution plan, without executing it."""
    from quantlab_assets.dagster_internals import planned_step_keys
    from quantlab_assets.definitions import defs
    from quantlab_assets.partitions import trading_day_partitions

    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(select).resolve(graph)
    if not keys:
        print(f"selection {select!r} matches no asset")
        return 1
    partitions: Sequence[str]
    if "dagster/partition" in tags:
        partitions = [tags["dagster/partition"]]
    else:
        partitions = trading_day_partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"])
        )
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys)
    steps = planned_step_keys(job)
    checks_by_step: dict[str, list[str]] = defaultdict(list)
    assets_by_step: dict[str, list[str]] = defaultdict(list)
    for ad in job.asset_layer.asset_graph.assets_defs:
        if not ad.is_executable:
            continue
        step = ad.node_def.name
        for key in ad.keys:
            if key in keys:
                assets_by_step[step].append(key.to_user_string())
        for spec in ad.check_specs:
            mark = "blocking" if spec.blocking else "warn"
            checks_by_step[step].append(f"{spec.asset_key.to_user_string()}.{spec.name} ({mark})")
    from quantlab_assets.common.calendar import is_trading_day

    sessions = sum(is_trading_day(p) for p in partitions)
    print(
        f"DRY RUN: nothing is executed. Selection {select!r}, partitions {label}: "
        f"{len(partitions)} weekday partitions ({sessions} sessions, {len(partitions) - sessions} holidays), "
        "one run (BackfillPolicy.single_run)"
    )
    print(f"{len(keys)} assets, {len(steps)} steps, in order:")
    for i, step in enumerate(steps, 1):
        what = ", ".join(assets_by_step.get(step, [])) or "checks"
        print(f"{i:3}. {step}: {what}")
        for check in checks_by_step.get(step, []):
            print(f"       check {check}")
    return 0


def cmd_rerun(instance: dg.DagsterInstance, run_id: str) -> int:
    """Re-execute a failed run from its failure: the steps that failed or never ran, with the
    parent's partitions, recorded as a child run (parent/root run tags) in Dagster's storage."""
    from quantlab_assets.definitions import defs

    run_id = _resolve_run_id(instance, run_id)
    parent = instance.get_run_by_id(run_id)
    assert parent is not None  # _resolve_run_id returns the id of an existing run
    if parent.status == dg.DagsterRunStatus.STARTED:
        alive, why = worker_health(instance, parent)
        if alive:
            raise CliError(f"run {run_id} is STARTED and {why}: nothing to resume")
        mark_failed(instance, parent, why)
        print(f"run {run_id} was STARTED but {why}: marked FAILURE")
        parent = instance.get_run_by_id(run_id)
        assert parent is not None  # the same run, just re-read
    if parent.status != dg.DagsterRunStatus.FAILURE:
        raise CliError(f"run {run_id} is {parent.status.value}, not FAILURE: nothing to resume")
    # a run that failed was planned: it has an execution plan snapshot
    assert parent.execution_plan_snapshot_id is not None
    planned = {step.key for step in instance.get_execution_plan_snapshot(parent.execution_plan_snapshot_id).steps}
    done = {_step_key(r) for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}
    steps = planned - done  # failed, or never started because something upstream failed
    assets, checks = set(), set()
    for ad in defs.resolve_asset_graph().assets_defs:
        if ad.is_executable and ad.node_def.name in steps:
            assets |= {k for k in ad.keys if k in parent.asset_selection} if parent.asset_selection else set(ad.keys)
            checks |= {
                c for c in ad.check_keys if not parent.asset_check_selection or c in parent.asset_check_selection
            }
    selection = dg.AssetSelection.assets(*assets) | dg.AssetSelection.checks(*checks)
    keep = {
        k: v
        for k, v in parent.tags.items()
        if k.startswith("dagster/asset_partition_range") or k == "dagster/partition"
    }
    keep.update({"dagster/parent_run_id": run_id, "dagster/root_run_id": parent.root_run_id or run_id})
    # The resolved definitions carry their resources already.
    result = dg.materialize(
        list(defs.resolve_asset_graph().assets_defs),
        selection=selection,
        instance=instance,
        tags=keep,
        raise_on_error=False,
    )
    print(
        f"re-executed {run_id} from its failure (steps {', '.join(sorted(steps))}; assets "
        f"{', '.join(sorted(k.to_user_string() for k in assets)) or '-'}; {len(checks)} checks) as run "
        f"{result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}"
    )
    return 0 if result.success else 2


def _step_key(record: dg.EventLogEntry) -> str | None:
    """The step key of a record read with ``of_type`` (always a Dagster event)."""
    assert record.dagster_event is not None
    return record.dagster_event.step_key


def _resolve_run_id(instance: dg.DagsterInstance, text: str) -> str:
    """A full run id, or a prefix of one (as `quantlab runs` prints it) that names exactly one run."""
    if instance.get_run_by_id(text) is not None:
        return text
    matches = sorted(r for r in instance.get_run_ids() if r.startswith(text)) if len(text) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CliError(
            f"run id prefix {text!r} matches {len(matches)} runs: {', '.join(m[:13] for m in matches[:5])}; "
            "give more characters"
        )
    raise CliError(f"no run {text!r}" + (" (give at least 4 characters)" if len(text) < 4 else ""))


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
    strategy, day = _known_strategy(args.strategy), _day(args.date, "--date", session=True)
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
        step, error = _failure(instance, result.run_id) if not result.success else ("", "")
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


def _check_dagster_home() -> None:
    """One line naming DAGSTER_HOME when Dagster's storage cannot live there (Dagster itself would
    raise a raw sqlite or "is not a directory" error)."""
    from quantlab_assets.common.artifacts import unwritable

    home = settings.dagster_home()
    if not home:
        return  # Dagster says itself that DAGSTER_HOME is unset
    path = Path(home)
    if path.exists() and not path.is_dir():
        raise CliError(f"DAGSTER_HOME={home} is a file, not a folder; point it at Dagster's folder")
    why = unwritable(path / "storage") if path.is_dir() else f"{path} does not exist"
    if why:
        raise CliError(f"DAGSTER_HOME={home}: Dagster's run storage cannot be written ({why})")


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
        approvals = read_slice(con, APPROVALS, FIRST_SESSION, today, columns=["date", "strategy", "status"])
    if not len(equity):
        print("no backtest stored yet: materialize the chain first (bash scripts/demo.sh)")
        return 1
    print(leaderboard_text(leaderboard(kpis, equity, approvals, equity["date"].max())))
    return 0


def _with_instance(command):
    """Run ``command(instance, args)`` on the DAGSTER_HOME instance, after failing the runs whose
    process died (without the daemon nobody else notices them)."""

    def run(args) -> int:
        _check_dagster_home()
        with dg.DagsterInstance.get() as instance:
            for run_id, why in fail_dead_runs(instance):
                print(f"run {run_id[:8]} was STARTED but {why}: marked FAILURE")
            return command(instance, args)

    return run


def _plan(args) -> int:
    tags, label = _partition_args(args)
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
    runs.set_defaults(handler=_with_instance(lambda instance, args: cmd_runs(instance, args.limit)))
    last = sub.add_parser("last-run", help="the latest run: steps, checks, artifacts")
    last.set_defaults(handler=_with_instance(lambda instance, args: cmd_last_run(instance)))
    plan = sub.add_parser("plan", help="dry run: what a materialization would run, in order")
    plan.add_argument("--select", required=True, help="Dagster asset selection, e.g. 'ohlcv*' or 'key:features'")
    plan.add_argument("--partition")
    plan.add_argument("--partition-range", help="START...END")
    plan.set_defaults(handler=_plan)
    rerun = sub.add_parser("rerun", help="re-execute a failed run from its failure")
    rerun.add_argument("run_id", help="the run id or its first characters (as `quantlab runs` prints it)")
    rerun.set_defaults(handler=_with_instance(lambda instance, args: cmd_rerun(instance, args.run_id)))
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
