"""Dagster-side helpers that turn core results into UI metadata."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.calendar import is_trading_day
from quantlab_assets.common.gates import UPSTREAM_CHECK, UPSTREAM_DESCRIPTION
from quantlab_assets.common.warehouse import TableSchema
from quantlab_assets.dagster_internals import (
    add_asset_metadata_per_partition,
    check_events_in_one_batch,
    check_target,
)
from quantlab_assets.partitions import PARTITION_FMT, trading_day_partitions


def column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.sql_type,
                description=c.description or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in schema.columns
        ]
    )


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, max_rows=rows))


def gate_check_result(result, asset_key: dg.AssetKey | str) -> dg.AssetCheckResult:
    """A core ``GateResult`` as an asset check result: figures as numbers, offenders as a table."""
    metadata: dict[str, dg.RawMetadataValue] = {k: float(v) for k, v in result.figures.items()}
    if len(result.offending):
        metadata["offending_rows"] = dg.MetadataValue.md(markdown_table(result.offending, max_rows=10))
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=result.name,
        passed=bool(result.passed),
        severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
        description=result.description,
        metadata=metadata,
    )


def gate_check_events(context, result, asset_key: dg.AssetKey | str):
    """``result`` as the check's own verdict on each partition of the run.

    A one-partition run reports an ``AssetCheckResult`` (Dagster scopes it to the partition). A run
    over a range reports one evaluation per partition: Dagster plans a partitioned check for every
    partition of the range and would show each one it never received as skipped, however the
    check ended. A failed rule whose offending rows are dated fails the partitions owning those
    dates and passes the others (saying where it failed); one whose offending rows carry no date
    (a share over the range, a schema) fails every partition of the run."""
    keys = run_partition_keys(context)
    if len(keys) <= 1:
        yield gate_check_result(result, asset_key)
        return
    key = dg.AssetKey.from_coercible(asset_key)
    failed_on = set(keys) if not result.passed else set()
    named = _offending_partitions(result.offending) if not result.passed else None
    if named and named & set(keys):
        failed_on = named & set(keys)
    output = _check_output_name(context, dg.AssetCheckKey(key, result.name))
    if output is not None:
        yield dg.Output(None, output_name=output)  # what a check result stands for downstream
    targets = _latest_materializations(context, key, keys)
    figures: dict[str, dg.RawMetadataValue] = {k: float(v) for k, v in result.figures.items()}
    figures["evaluated_over"] = f"{keys[0]}..{keys[-1]} ({len(keys)} partitions, one run)"
    first = min(failed_on) if failed_on else ""
    evaluations = []
    for partition in keys:
        metadata = dict(figures)
        failed = partition in failed_on
        description = result.description
        if failed and named:
            rows = result.offending[_partition_keys_of(result.offending) == partition]
            if len(rows):
                metadata["offending_rows"] = dg.MetadataValue.md(markdown_table(rows, max_rows=10))
        elif failed and len(result.offending):  # undated offenders: the run's table on each partition
            metadata["offending_rows"] = dg.MetadataValue.md(markdown_table(result.offending, max_rows=10))
        elif not failed and failed_on:
            description = (
                f"no offending row on {partition}; the rule failed on {len(failed_on)} other partition(s) "
                f"of this run (first {first}): {result.description}"
            )
        evaluations.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=result.name,
                passed=not failed,
                metadata=metadata,
                target_materialization_data=targets.get(partition),
                severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
                description=description,
                blocking=bool(result.blocking),
                partition=partition,
            )
        )
    # A failed blocking evaluation goes through Dagster's own handling (it fails the step once the
    # step's results are in); the others are written as one event batch.
    # The passing partitions first, then the failing ones, each in partition order: whoever reads
    # the run's evaluations of a check in order (a {check: evaluation} map, the run's log) ends on
    # its failure, as it did when a range run reported one evaluation.
    evaluations.sort(key=lambda e: not e.passed)
    others = [e for e in evaluations if not (e.blocking and not e.passed)]
    logged = iter(check_events_in_one_batch(context, others) or others)
    for evaluation in evaluations:
        yield evaluation if evaluation.blocking and not evaluation.passed else next(logged)


def _check_output_name(context, check_key: dg.AssetCheckKey) -> str | None:
    """The step output of ``check_key`` (None if the check is not selected in this run)."""
    assets_def = getattr(context, "op_execution_context", context).assets_def
    if check_key not in assets_def.check_keys:
        return None
    for name, spec in assets_def.check_specs_by_output_name.items():
        if spec.key == check_key:
            return name
    return None


def _partition_keys_of(frame: pd.DataFrame) -> pd.Series:
    """The weekday partition owning each row's ``date`` (a weekend date belongs to its Friday)."""
    dates = pd.to_datetime(frame["date"], errors="coerce").dt.normalize()
    back = (dates.dt.weekday - 4).clip(lower=0)
    return (dates - pd.to_timedelta(back, unit="D")).dt.strftime(PARTITION_FMT)


def _offending_partitions(frame: pd.DataFrame) -> set[str] | None:
    """Partitions the offending rows are dated on; None when a row carries no date."""
    if not len(frame) or "date" not in frame.columns:
        return None
    keys = _partition_keys_of(frame)
    return None if keys.isna().any() else set(keys)


def _latest_materializations(context, key: dg.AssetKey, partitions: list[str]) -> dict:
    """Each partition's latest materialization of ``key`` (what its evaluation checks), in a few
    bounded queries: the run's step has just materialized every partition, so the first query
    usually finds them all."""
    found: dict = {}
    for _ in range(4):
        missing = [p for p in partitions if p not in found]
        if not missing:
            break
        page = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=missing), limit=len(missing)
        )
        for record in page.records:
            partition = record.event_log_entry.dagster_event.partition
            if partition in missing and partition not in found:
                found[partition] = check_target(record)
        if not page.records:
            break
    return found


def upstream_spec(asset) -> dg.AssetCheckSpec:
    """The blocking ``upstream_complete`` check a step reports on its own asset (see common.gates)."""
    return dg.AssetCheckSpec(
        UPSTREAM_CHECK,
        asset=asset,
        blocking=True,
        description=UPSTREAM_DESCRIPTION,
        partitions_def=trading_day_partitions,
    )


# Dagster copies an asset's metadata into one event per partition: a 10-year backfill would
# store a report 2,500 times. Runs over more partitions than this get a pointer instead.
DETAIL_PARTITIONS = 5


def run_partition_keys(context) -> list[str]:
    """The partitions this step materializes ([] for an unpartitioned run)."""
    return list(context.partition_keys) if context.has_partition_key_range or context.has_partition_key else []


def is_backfill(context) -> bool:
    """More partitions than :data:`DETAIL_PARTITIONS`: run-level reports go to one partition only."""
    return len(run_partition_keys(context)) > DETAIL_PARTITIONS


def detail(context, markdown: str, report: str) -> dg.MetadataValue:
    """Full markdown for a short run; for a backfill, where to read it (the run's report file)."""
    if not is_backfill(context):
        return dg.MetadataValue.md(markdown)
    return dg.MetadataValue.md(
        f"Backfill of {len(run_partition_keys(context))} partitions: see `reports/{report}` in the run's "
        f"artifact folder (`artifacts/runs/{context.run.run_id}/`)."
    )


def add_partition_metadata(
    context,
    dates,
    asset_key=None,
    per_day: dict | None = None,
    written: bool = True,
    latest: dict | None = None,
    why: str = "an upstream input is missing",
) -> None:
    """Each partition's own figures (rows written on its day, a holiday's "no session: 0 rows",
    anything in ``per_day[day]``); they override the run's metadata on that partition only.
    ``latest``: what describes the whole run (its summary report), on the run's last partition only,
    so no other partition shows another day's figures."""
    # Counted in numpy: ``dates`` is every written row's date (millions at 500 names x 10 years).
    days, n = np.unique(pd.to_datetime(np.asarray(dates)).to_numpy(), return_counts=True)
    counts = {pd.Timestamp(day): int(c) for day, c in zip(days, n)}  # a dict lookup per partition
    keys = context.partition_keys
    per_partition = {}
    for key in keys:
        day = pd.Timestamp(key)
        if not is_trading_day(day):
            meta = {"dagster/row_count": 0, "session": "no session: 0 rows"}
        elif not written:
            meta = {"dagster/row_count": 0, "session": f"not written: {why}"}
        else:
            meta = {"dagster/row_count": counts.get(day, 0), "session": key}
        meta.update((per_day or {}).get(day, {}))
        if latest and key == keys[-1]:
            meta.update(latest)
        per_partition[key] = meta
    add_asset_metadata_per_partition(context, per_partition, asset_key=asset_key)


def served_image(context, data: bytes, stem: str) -> str | None:
    """A URL path the Dagster webserver serves ``data`` from, for a markdown image; None if none.

    The UI's markdown drops ``data:`` URIs (react-markdown keeps http(s) and relative URLs only),
    and the webserver serves no user files except through its compute-log download route
    (``/logs/<key...>/<ext>``, files under the local compute log manager's folder): the image
    is written there, beside the run's logs, so the relative URL renders on the same server.
    """
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    manager = context.instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager) or not data:
        return None
    key = [context.run.run_id, "quantlab", stem]
    path = Path(manager.get_captured_local_path(key, "png"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return "/logs/" + "/".join(key) + "/png"


def png_md(context, data: bytes, alt: str, stem: str) -> str:
    """A markdown image the UI renders: served by the webserver (the UI drops ``data:`` URIs),
    or inline where the instance has no local compute logs to serve it from."""
    url = served_image(context, data, stem)
    return f"![{alt}]({url or 'data:image/png;base64,' + base64.b64encode(data).decode('ascii')})"


def _run_level(context, metadata: dict) -> tuple[dict, dict]:
    """(what every partition of the run carries, what only its last partition carries).

    Dagster copies a step's materialization metadata into one event per partition. In a backfill
    the run's figures (universe, book statistics, table schema, previews) describe the run, not a
    day, so they go to the last partition only (the one the asset's page shows as latest); every
    other partition shows its own rows and figures. It also spares serializing them 2,610 times
    (two thirds of a targets step's event encoding)."""
    if not is_backfill(context):
        return metadata, {}
    # The last partition's row count stays its own (the run's total is in its walkthrough).
    return {}, {k: v for k, v in metadata.items() if k != "dagster/row_count"}


def published_results(context, outcome, asset_key, metadata: dict, dates=(), **partition_meta):
    """The Dagster side of ``common.publish``: one materialization and the audit's check results.

    Published: ``metadata`` plus each partition's own rows (``add_partition_metadata`` with
    ``dates`` and ``partition_meta``). Refused: row count 0 and ``not_written`` naming the failed
    rules, every partition marked "not written", and the failed blocking checks stop every
    downstream step; the stored rows (the previous materialization's) were kept.
    """
    if outcome.published:
        metadata, run_figures = _run_level(context, metadata)
        if run_figures:
            partition_meta["latest"] = {**run_figures, **(partition_meta.get("latest") or {})}
        add_partition_metadata(context, dates, asset_key=asset_key, **partition_meta)
        yield dg.MaterializeResult(asset_key=asset_key, metadata=metadata)
    else:
        upstream_only = all(g.name == UPSTREAM_CHECK for g in outcome.failures)
        why = (
            "an upstream input is missing"
            if upstream_only
            else "the audit refused the new rows; the stored rows were kept"
        )
        add_partition_metadata(context, [], asset_key=asset_key, written=False, why=why)
        yield dg.MaterializeResult(
            asset_key=asset_key, metadata={"dagster/row_count": 0, "not_written": outcome.reason}
        )
    # A check the user deselected (the UI's check picker) is not reported; Dagster would refuse it.
    selected = context.selected_asset_check_keys
    for result in outcome.gate:
        if dg.AssetCheckKey(dg.AssetKey.from_coercible(asset_key), result.name) in selected:
            yield from gate_check_events(context, result, asset_key)
