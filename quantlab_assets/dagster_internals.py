"""The only imports of Dagster's private modules, kept in one place so an upgrade that moves them
breaks one file: a run launcher's health-check types (no public home in Dagster 1.13), the
execution plan of a job (what ``quantlab plan`` prints without running anything) and a step's
metadata accumulator (``add_asset_metadata_per_partition``). A Dagster-layer module beside
``metadata.py`` (which needs it): below the teams and the batch orchestrator, above ``common``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

__all__ = ["CheckRunHealthResult", "WorkerStatus", "add_asset_metadata_per_partition", "planned_step_keys"]


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
