"""Supervisor tables: approvals, approved targets, the append-only override and approval logs,
and the readers of a partition's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pandas as pd

from quantlab_assets.backtest_engine.core.schema import BACKTEST_KPIS
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.text import refuse_control
from quantlab_assets.common.warehouse import append_rows, ensure_table, read_strategy_slice
from quantlab_assets.portfolio_supervisor.core.evaluate import STATUSES, Verdict
from quantlab_assets.portfolio_supervisor.core.schema import (
    APPROVAL_LOG,
    APPROVALS,
    APPROVED_TARGETS,
    FLAGS_SEPARATOR,
    OVERRIDES,
)
from quantlab_assets.strategy_lab.core.schema import TARGETS


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
    refuse_control(reason, "reason")
    refuse_control(decided_by, "decided by", max_length=200)
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


def decision_log_rows(approvals: pd.DataFrame, run_id: str, now: datetime | None = None) -> pd.DataFrame:
    """``approval_log`` rows of published decisions: who decided (the rules or a person's override)."""
    now = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
    source = approvals["override_by"].map(lambda b: "rules" if pd.isna(b) else "override")
    return approvals.assign(source=source, run_id=run_id, logged_at=pd.Timestamp(now))[APPROVAL_LOG.column_names]


def flagged_symbols(flags: str | None) -> list[str]:
    """The names flagged in a stored ``flags`` value (the flag format is ``Verdict``'s)."""
    return Verdict(status="", flags=(flags or "").split(FLAGS_SEPARATOR)).flagged_symbols


@dataclass(frozen=True)
class SupervisionInputs:
    """What one partition [start, end] of a strategy's supervision reads."""

    previous_day: pd.Timestamp  # the session before ``start``
    targets: pd.DataFrame  # the strategy's targets from ``previous_day`` to ``end``
    kpis: pd.DataFrame  # its backtest KPIs over [start, end]
    previous_flags: list[str]  # names the supervisor flagged on ``previous_day``
    previous_book: pd.Series | None  # the approved book of ``previous_day`` (None: none stored)


def read_inputs(con: duckdb.DuckDBPyConnection, strategy: str, start, end) -> SupervisionInputs:
    prev_day = shift_sessions(start, -1)
    approval = read_strategy_slice(con, APPROVALS, strategy, prev_day, prev_day)
    book = read_strategy_slice(con, APPROVED_TARGETS, strategy, prev_day, prev_day)
    return SupervisionInputs(
        previous_day=prev_day,
        targets=read_strategy_slice(con, TARGETS, strategy, prev_day, end).assign(strategy=strategy),
        kpis=read_strategy_slice(con, BACKTEST_KPIS, strategy, start, end),
        previous_flags=flagged_symbols(approval["flags"].iloc[0]) if len(approval) else [],
        previous_book=book.set_index("symbol")["weight"] if len(book) else None,
    )
