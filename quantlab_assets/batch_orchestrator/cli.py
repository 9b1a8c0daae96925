"""``python -m quantlab_assets.batch_orchestrator.cli``: run history from Dagster's storage.

Commands:
  runs [--limit N]   recent runs: status, duration, partitions, failed step and error
  last-run           the latest run in detail: steps, check results, artifacts
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import dagster as dg
from dagster._core.events import DagsterEventType

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


def _failure(instance, run_id: str) -> tuple[str, str]:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.event_specific_data.error if event.event_specific_data else None
        message = (error.message.strip().splitlines() or [""])[-1] if error else ""
        return event.step_key or "-", message[:200]
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
        print(f"{run.run_id[:8]:10} {run.status.value:9} {run.job_name[:16]:16} {_partitions(run):23} "
              f"{secs if secs is not None else float('nan'):7.1f}  {step} {err}".rstrip())
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
    print(f"run {run.run_id}  {run.status.value}  job {run.job_name}  partitions {_partitions(run)}"
          + (f"  {secs:.1f}s" if secs is not None else ""))
    step_events = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
                   DagsterEventType.ASSET_CHECK_EVALUATION}
    for record in instance.all_logs(run.run_id, of_type=step_events):
        event = record.dagster_event
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = event.event_specific_data
            verdict = "pass" if ev.passed else ("FAIL" if ev.severity == dg.AssetCheckSeverity.ERROR else "warn")
            print(f"  check {ev.asset_key.to_user_string()}.{ev.check_name}: {verdict}  {ev.description or ''}")
        else:
            print(f"  step {event.step_key}: {event.event_type_value}")
    run_dir = settings.artifacts_root() / "runs" / run.run_id
    if run_dir.exists():
        print(f"artifacts: {run_dir}")
        for path in sorted(run_dir.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(run_dir)}")
    return 0 if run.status == dg.DagsterRunStatus.SUCCESS else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quantlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="recent runs with status, duration, partitions, errors")
    runs.add_argument("--limit", type=int, default=20)
    sub.add_parser("last-run", help="the latest run: steps, checks, artifacts")
    args = parser.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        if args.command == "runs":
            return cmd_runs(instance, args.limit)
        return cmd_last_run(instance)


if __name__ == "__main__":
    sys.exit(main())
