"""The only imports of Dagster's private modules, kept in one place so an upgrade that moves them
breaks one file: a run launcher's health-check types (no public home in Dagster 1.13), the
execution plan of a job (what ``quantlab plan`` prints without running anything), a step's
metadata accumulator (``add_asset_metadata_per_partition``), the materialization a check
evaluation targets (``check_target``) and a check's per-partition evaluations logged as one event
batch (``check_events_in_one_batch``). A Dagster-layer module beside ``metadata.py`` (which needs
it): below the teams and the batch orchestrator, above ``common``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, DagsterEventType, generate_event_batch_id
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

__all__ = [
    "CheckRunHealthResult",
    "WorkerStatus",
    "add_asset_metadata_per_partition",
    "check_events_in_one_batch",
    "check_target",
    "planned_step_keys",
]


def check_target(record) -> AssetCheckEvaluationTargetMaterializationData:
    """What a check evaluation of a partition points at: that partition's materialization ``record``
    (an ``EventLogRecord``). The UI shows an evaluation as current only while it targets the
    partition's latest materialization (``AssetCheckPartitionInfo.is_current``)."""
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def planned_step_keys(job: dg.JobDefinition) -> list[str]:
    """The step keys Dagster would execute for ``job``, in topological order."""
    return [step.key for step in create_execution_plan(job).get_steps_to_execute_in_topo_order()]


def add_asset_metadata_per_partition(
    context, per_partition: Mapping[str, Mapping[str, Any]], asset_key: dg.AssetKey | None = None
) -> None:
    """``context.add_asset_metadata(meta, asset_key=..., partition_key=key)`` for every item, in one go.

    Why: each public call rebuilds the step's whole metadata accumulator (a merged copy of all
    metadata added so far, type-checked entry by entry) and lists the run's partition keys again,
    so a 10-year backfill's 2,610 calls per asset cost quadratic time (seconds per asset, the
    largest part of a short strategy's step). The first item goes through the public call, which
    validates the asset key and the partition; the others are checked against the run's partition
    keys and merged into the accumulator once, giving the same accumulator as the calls one by one
    (a test compares the stored per-partition metadata). Without a step context (a direct
    invocation in a test) it makes the public calls.
    """
    items = list(per_partition.items())
    if not items:
        return
    first_key, first_meta = items[0]
    context.add_asset_metadata(first_meta, asset_key=asset_key, partition_key=first_key)
    step: Any = getattr(getattr(context, "op_execution_context", None), "_step_execution_context", None)
    accumulator = getattr(step, "_metadata_accumulator", None)
    if step is None or not isinstance(accumulator, OutputMetadataAccumulator):
        for key, meta in items[1:]:
            context.add_asset_metadata(meta, asset_key=asset_key, partition_key=key)
        return
    targeted = set(context.partition_keys)
    stray = [key for key, _ in items if key not in targeted]
    if stray:
        raise dg.DagsterInvariantViolationError(
            f"Attempted to add metadata for partition keys {stray[:5]} that are not being targeted."
        )
    resolved = dg.AssetKey.from_coercible(asset_key) if asset_key else context.assets_def.key
    merged = dict(accumulator.per_output_metadata)
    for key, meta in items[1:]:
        handle = AssetMetadataHandle(asset_key=resolved, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **meta}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


def check_events_in_one_batch(context, evaluations) -> list[DagsterEvent] | None:
    """The ``ASSET_CHECK_EVALUATION`` events of ``evaluations`` (one check's per-partition
    verdicts), logged as one event batch, as Dagster logs a step's per-partition materializations:
    the instance hands them to ``EventLogStorage.store_event_batch`` in one call (see
    ``event_log_storage``) instead of one write per partition. The events are logged here; the
    step yields them as they are. None without a step context (a direct invocation): the caller
    yields the evaluations themselves."""
    op_context = getattr(context, "op_execution_context", context)
    step = getattr(op_context, "_step_execution_context", None)
    if step is None or not evaluations:
        return None
    batch, last = generate_event_batch_id(), len(evaluations) - 1
    events = []
    for i, evaluation in enumerate(evaluations):
        message = (
            f"Asset check '{evaluation.check_name}' on '{evaluation.asset_key.to_user_string()}' "
            + ("passed." if evaluation.passed else "did not pass.")
            + ("" if evaluation.description is None else f" Description: '{evaluation.description}'")
        )
        events.append(
            DagsterEvent.from_step(
                DagsterEventType.ASSET_CHECK_EVALUATION,
                step,
                evaluation,
                message,
                batch_metadata=DagsterEventBatchMetadata(batch, i == last),
            )
        )
    return events
