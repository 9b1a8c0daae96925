"""Write, audit, publish for the derived contracts (features, labels, targets, backtest, approvals).

A step computes its partition's candidate rows in memory; its team's core audits exactly those
rows (the blocking ``GateResult``\\s, the same rules the UI shows as asset checks); then
:func:`audit_and_publish` opens one transaction and either

* **publishes**: every candidate slice replaces its stored slice (delete + insert), or
* **refuses**: the stored rows stay bit for bit, and what failed is recorded in
  ``audit_rejects`` (run id, contract, partition, rule, reason, the offending rows as JSON),

so a reader sees the previous rows or the audited new ones, never unaudited ones. ``ohlcv`` has
its own per-symbol variant (``data_curator.core.step``) because a provider's symbols fail
independently; a derived contract is computed by code from audited inputs, so a failing rule
means the code or its configuration is wrong and the whole slice is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.common.warehouse import (
    Column,
    TableSchema,
    append_rows_in_transaction,
    ensure_table,
    replace_slice_in_transaction,
    transaction,
)

# Offending rows kept per refused rule: enough to see the pattern, bounded for a 10-year slice.
MAX_OFFENDING_ROWS = 1000

AUDIT_REJECTS = TableSchema(
    name="audit_rejects",
    date_column="start_date",
    description="Slices of derived contracts refused by their audit: the stored rows were kept.",
    columns=(
        Column("run_id", "VARCHAR", False, "Dagster run that computed the refused slice"),
        Column("contract", "VARCHAR", False, "table (and strategy) the slice was for, e.g. targets/momentum_topk"),
        Column("start_date", "DATE", False, "first date of the refused slice"),
        Column("end_date", "DATE", False, "last date of the refused slice"),
        Column("rule", "VARCHAR", False, "the blocking gate rule that failed"),
        Column("reason", "VARCHAR", False, "the rule's message"),
        Column("candidate_rows", "BIGINT", False, "rows the slice would have written"),
        Column("offending", "VARCHAR", True, "offending rows as JSON records (at most 1,000)"),
        Column("recorded_at", "TIMESTAMP", False, "when the refusal was committed (UTC)"),
    ),
)


@dataclass(frozen=True)
class Slice:
    """Candidate rows for one table over the partition; ``strategy`` scopes a shared table."""

    schema: TableSchema
    frame: pd.DataFrame
    strategy: str | None = None


@dataclass
class Published:
    """What :func:`audit_and_publish` did: rows written per table, or why nothing was."""

    published: bool
    gate: list[GateResult]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> list[GateResult]:
        return blocking_failures(self.gate)

    @property
    def reason(self) -> str:
        """One line for the UI: why the stored rows were kept ("" when published)."""
        if self.published:
            return ""
        return "; ".join(f"{g.name}: {g.description}" for g in self.failures) + "; the stored rows were kept"


def blocking_failures(gate: Sequence[GateResult]) -> list[GateResult]:
    return [g for g in gate if g.blocking and not g.passed]


def _offending_json(frame: pd.DataFrame) -> str | None:
    if frame is None or not len(frame):
        return None
    head = frame.head(MAX_OFFENDING_ROWS).copy()
    for col in head.columns[[k == "f" for k in head.dtypes.map(lambda d: d.kind)]]:
        # JSON has no inf/NaN (to_json writes null): an offending inf must stay visible.
        values = head[col]
        head[col] = values.astype(object).where(np.isfinite(values), values.map(str))
    return json.dumps(json.loads(head.to_json(orient="records", date_format="iso", default_handler=str)))


def rejects_frame(gate: Sequence[GateResult], contract: str, run_id: str, start, end, candidate_rows: int):
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return pd.DataFrame(
        [
            {
                "run_id": run_id,
                "contract": contract,
                "start_date": pd.Timestamp(start).normalize(),
                "end_date": pd.Timestamp(end).normalize(),
                "rule": g.name,
                "reason": g.description,
                "candidate_rows": int(candidate_rows),
                "offending": _offending_json(g.offending),
                "recorded_at": now,
            }
            for g in blocking_failures(gate)
        ],
        columns=AUDIT_REJECTS.column_names,
    )


def audit_and_publish(
    con: duckdb.DuckDBPyConnection,
    slices: Sequence[Slice],
    gate: Sequence[GateResult],
    start,
    end,
    *,
    contract: str,
    run_id: str,
    appends: Sequence[tuple[TableSchema, pd.DataFrame]] = (),
) -> Published:
    """Publish ``slices`` over [start, end] in one transaction if no blocking rule of ``gate``
    failed; otherwise keep every stored row and record the refusal in ``audit_rejects``.

    ``gate`` must be the audit of exactly these slices' rows (the caller's core ran it on them).
    ``appends``: rows for append-only logs, committed with the publish and only with it.
    """
    gate = list(gate)
    ensure_table(con, AUDIT_REJECTS)
    for schema in [s.schema for s in slices] + [schema for schema, _ in appends]:
        ensure_table(con, schema)
    if blocking_failures(gate):
        candidate = sum(len(s.frame) for s in slices)
        with transaction(con):
            append_rows_in_transaction(con, AUDIT_REJECTS, rejects_frame(gate, contract, run_id, start, end, candidate))
        return Published(False, gate)
    rows: dict[str, int] = {}
    with transaction(con):
        for s in slices:
            if s.strategy is None:
                rows[s.schema.name] = replace_slice_in_transaction(con, s.schema, s.frame, start, end)
            else:
                rows[s.schema.name] = replace_slice_in_transaction(
                    con,
                    s.schema,
                    s.frame.assign(strategy=s.strategy),
                    start,
                    end,
                    key_column="strategy",
                    keys=[s.strategy],
                )
        for schema, frame in appends:
            append_rows_in_transaction(con, schema, frame)
    con.unregister("_incoming")
    con.unregister("_rows")  # only after COMMIT: inside an aborted transaction it would raise
    return Published(True, gate, rows)


def read_audit_rejects(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pd.DataFrame:
    """Refusals recorded by ``run_id`` (all runs when None), oldest first."""
    ensure_table(con, AUDIT_REJECTS)
    sql = f'SELECT * FROM "{AUDIT_REJECTS.name}"'
    params: list = []
    if run_id is not None:
        sql += " WHERE run_id = ?"
        params.append(run_id)
    return con.execute(sql + " ORDER BY recorded_at, contract, rule", params).df()
