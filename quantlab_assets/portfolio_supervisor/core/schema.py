"""The supervisor's warehouse tables: ``approvals`` and ``approved_targets`` (published per
partition), and the append-only ``approval_overrides`` and ``approval_log``."""

from __future__ import annotations

from quantlab_assets.common.warehouse import Column, TableSchema

# How a day's risk flags are stored in one ``approvals.flags`` value.
FLAGS_SEPARATOR = ","

APPROVALS = TableSchema(
    name="approvals",
    description="One decision per (date, strategy): status, reasons, risk flags, measured values.",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("status", "VARCHAR", False, "approved | rejected | needs_review"),
        Column("rule_status", "VARCHAR", False, "what the rules alone decided"),
        Column("reasons", "VARCHAR", description="sentences with measured value and limit, '; '-joined"),
        Column("flags", "VARCHAR", description=f"risk flags, '{FLAGS_SEPARATOR}'-joined: rule or rule:SYMBOL"),
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
