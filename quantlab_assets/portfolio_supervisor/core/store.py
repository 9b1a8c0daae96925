"""Supervisor tables: approvals, approved targets, the append-only override and approval logs."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import Column, TableSchema, append_rows, ensure_table
from quantlab_assets.portfolio_supervisor.core.evaluate import STATUSES

APPROVALS = TableSchema(
    name="approvals",
    description="One decision per (date, strategy): status, reasons, risk flags, measured values.",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("status", "VARCHAR", False, "approved | rejected | needs_review"),
        Column("rule_status", "VARCHAR", False, "what the rules alone decided"),
        Column("reasons", "VARCHAR", description="sentences with measured value and limit, '; '-joined"),
        Column("flags", "VARCHAR", description="risk flags, ','-joined: rule or rule:SYMBOL"),
        Column("rebalance", "BOOLEAN", False),
        Column("gross", "DOUBLE"),
        Column("net", "DOUBLE"),
        Column("names", "DOUBLE"),
        Column("max_weight", "DOUBLE"),
        Column("hhi", "DOUBLE"),
        Column("turnover", "DOUBLE"),
        Column("max_drawdown", "DOUBLE"),
        Column("sharpe", "DOUBLE"),
        Column("override_by", "VARCHAR"),
        Column("override_reason", "VARCHAR"),
    ),
)

APPROVED_TARGETS = TableSchema(
    name="approved_targets",
    description="What a future execution stage may trade, per (date, strategy, symbol).",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("weight", "DOUBLE", False),
        Column("source", "VARCHAR", False, "targets | held last approved book | flat"),
    ),
)

OVERRIDES = TableSchema(
    name="approval_overrides",
    description="Append-only: a person's decision replacing the rules' status for (strategy, date).",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("status", "VARCHAR", False),
        Column("reason", "VARCHAR", False),
        Column("decided_by", "VARCHAR", False),
        Column("decided_at", "TIMESTAMP", False),
    ),
)

APPROVAL_LOG = TableSchema(
    name="approval_log",
    description="Append-only: every decision as it was made, by run.",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("status", "VARCHAR", False),
        Column("source", "VARCHAR", False, "rules | override"),
        Column("reasons", "VARCHAR"),
        Column("flags", "VARCHAR"),
        Column("run_id", "VARCHAR", False),
        Column("logged_at", "TIMESTAMP", False),
    ),
)


def record_override(
    con: duckdb.DuckDBPyConnection,
    strategy: str,
    day,
    status: str,
    reason: str,
    decided_by: str,
    now: datetime | None = None,
) -> None:
    """Append a person's decision; nothing is ever updated or deleted."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if not reason or not reason.strip():
        raise ValueError("an override needs a reason")
    if not decided_by or not decided_by.strip():
        raise ValueError("an override needs the name of who decided")
    now = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
    append_rows(
        con,
        OVERRIDES,
        pd.DataFrame(
            [
                {
                    "date": pd.Timestamp(day),
                    "strategy": strategy,
                    "status": status,
                    "reason": reason.strip(),
                    "decided_by": decided_by.strip(),
                    "decided_at": pd.Timestamp(now),
                }
            ]
        ),
    )


def latest_overrides(con: duckdb.DuckDBPyConnection, strategy: str, start, end) -> pd.DataFrame:
    """The last override per date for a strategy in [start, end]."""
    ensure_table(con, OVERRIDES)
    return con.execute(
        """SELECT * FROM approval_overrides WHERE strategy = ? AND date BETWEEN ? AND ?
           QUALIFY row_number() OVER (PARTITION BY date ORDER BY decided_at DESC) = 1 ORDER BY date""",
        [strategy, pd.Timestamp(start).date(), pd.Timestamp(end).date()],
    ).df()


def append_log(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> None:
    append_rows(con, APPROVAL_LOG, rows)
