"""The only imports of Dagster's private modules, kept in one place so an upgrade that moves them
breaks one file: a run launcher's health-check types (no public home in Dagster 1.13) and the
execution plan of a job (what ``quantlab plan`` prints without running anything)."""

from __future__ import annotations

import dagster as dg
from dagster._core.execution.api import create_execution_plan
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

__all__ = ["CheckRunHealthResult", "WorkerStatus", "planned_step_keys"]


def planned_step_keys(job: dg.JobDefinition) -> list[str]:
    """The step keys Dagster would execute for ``job``, in topological order."""
    return [step.key for step in create_execution_plan(job).get_steps_to_execute_in_topo_order()]
