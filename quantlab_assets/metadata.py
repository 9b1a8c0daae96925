"""Dagster-side helpers that turn core results into UI metadata."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.warehouse import TableSchema


def column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.sql_type, description=c.description or None,
                       constraints=dg.TableColumnConstraints(nullable=c.nullable))
        for c in schema.columns
    ])


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, max_rows=rows))


def gate_check_result(result, asset_key: str) -> dg.AssetCheckResult:
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


# Dagster copies an asset's metadata into one event per partition: a 10-year backfill would
# store a report 2,500 times. Runs over more partitions than this get a pointer instead.
DETAIL_PARTITIONS = 5


def detail(context, markdown: str, report: str) -> dg.MetadataValue:
    """Full markdown for a short run; for a backfill, where to read it (the run's report file)."""
    keys = context.partition_keys if context.has_partition_key_range or context.has_partition_key else []
    if len(keys) <= DETAIL_PARTITIONS:
        return dg.MetadataValue.md(markdown)
    return dg.MetadataValue.md(f"Backfill of {len(keys)} partitions: see `reports/{report}` in the run's "
                               f"artifact folder (`artifacts/runs/{context.run.run_id}/`).")
