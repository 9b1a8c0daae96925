"""The run history and re-execution commands: ``runs``, ``last-run``, ``plan`` (Dagster's own
execution plan, nothing executed) and ``rerun`` (a failed run from its failure, as a child run).
Each reads the DAGSTER_HOME instance (``with_instance`` fails the runs whose process died first).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import dagster as dg

from quantlab_assets.batch_orchestrator.cli_input import CliError, check_dagster_home
from quantlab_assets.batch_orchestrator.run_health import fail_dead_runs, mark_failed, worker_health
from quantlab_assets.common import settings

_RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _partitions(run) -> str:
    tags = run.tags
    if _RANGE[0] in tags:
        return f"{tags[_RANGE[0]]}...{tags[_RANGE[1]]}"
    return tags.get("dagster/partition", "-")


def _duration(record) -> float | None:
    if record.start_time and record.end_time:
        return record.end_time - record.start_time
    return None


def step_failure(instance, run_id: str) -> tuple[str, str]:
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
        step, err = step_failure(instance, run.run_id) if run.status == dg.DagsterRunStatus.FAILURE else ("", "")
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


def with_instance(command):
    """Run ``command(instance, args)`` on the DAGSTER_HOME instance, after failing the runs whose
    process died (without the daemon nobody else notices them)."""

    def run(args) -> int:
        check_dagster_home()
        with dg.DagsterInstance.get() as instance:
            for run_id, why in fail_dead_runs(instance):
                print(f"run {run_id[:8]} was STARTED but {why}: marked FAILURE")
            return command(instance, args)

    return run
