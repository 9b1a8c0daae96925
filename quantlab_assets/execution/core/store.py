"""Readers and appenders of the execution tables (every value a bound parameter)."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import TableSchema, append_rows_in_transaction, ensure_table, transaction
from quantlab_assets.execution.core.schema import (
    ACTIVE,
    BREAKS,
    LEDGER,
    ORDER_EVENTS,
    PAPER_BOOK,
    RESOLUTIONS,
    SIM_LEDGER,
    SIM_ORDERS,
    SWITCH_LOG,
    SWITCH_STATES,
)


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None))


def ensure_all(con: duckdb.DuckDBPyConnection) -> None:
    """Create the execution tables (the readers below assume them: a cycle reads them many times)."""
    for schema in (ORDER_EVENTS, LEDGER, BREAKS, RESOLUTIONS, SWITCH_LOG, PAPER_BOOK, SIM_ORDERS, SIM_LEDGER):
        ensure_table(con, schema)


def read_ledger(con: duckdb.DuckDBPyConnection, strategy: str, schema: TableSchema = LEDGER) -> pd.DataFrame:
    out = con.execute(f'SELECT * FROM "{schema.name}" WHERE strategy = ? ORDER BY seq', [strategy]).df()
    out["date"] = pd.to_datetime(out["date"])
    return out


def append_ledger(
    con: duckdb.DuckDBPyConnection, rows: list[dict], schema: TableSchema = LEDGER, now=None
) -> pd.DataFrame:
    """Append ``rows`` whose ``entry_id`` is not stored yet, numbered after the last ``seq``, in
    one transaction; returns what was appended (a re-run appends nothing)."""
    if not rows:
        return pd.DataFrame(columns=schema.column_names)
    frame = pd.DataFrame(rows)
    ids = list(frame["entry_id"])
    with transaction(con):
        known = {
            r[0]
            for r in con.execute(
                f'SELECT entry_id FROM "{schema.name}" WHERE list_contains(?, entry_id)', [ids]
            ).fetchall()
        }
        fresh = frame[~frame["entry_id"].isin(known)].drop_duplicates("entry_id")
        last = con.execute(f'SELECT coalesce(max(seq), 0) FROM "{schema.name}"').fetchall()[0][0]
        fresh = fresh.assign(seq=range(int(last) + 1, int(last) + 1 + len(fresh)), recorded_at=now or now_utc())
        fresh = fresh[schema.column_names]
        append_rows_in_transaction(con, schema, fresh)
    if len(fresh):
        con.unregister("_rows")
    return fresh


def append_log(con: duckdb.DuckDBPyConnection, schema: TableSchema, rows: list[dict]) -> int:
    if not rows:
        return 0
    frame = pd.DataFrame(rows, columns=schema.column_names)
    with transaction(con):
        append_rows_in_transaction(con, schema, frame)
    con.unregister("_rows")
    return len(frame)


def read_events(con: duckdb.DuckDBPyConnection, strategy: str) -> pd.DataFrame:
    out = con.execute(
        f'SELECT * FROM "{ORDER_EVENTS.name}" WHERE strategy = ? ORDER BY recorded_at, client_order_id',
        [strategy],
    ).df()
    out["date"] = pd.to_datetime(out["date"])
    return out


def latest_events(events: pd.DataFrame) -> pd.DataFrame:
    """Each order's last event (its state now)."""
    if events.empty:
        return events
    return events.groupby("client_order_id", sort=True).tail(1).set_index("client_order_id")


def switch_state(con: duckdb.DuckDBPyConnection, strategy: str) -> tuple[str, str]:
    """(state, why) of the strategy's kill switch: the last logged change, else ACTIVE."""
    rows = con.execute(
        f'SELECT state, reason, decided_by FROM "{SWITCH_LOG.name}" WHERE strategy = ? '
        "ORDER BY decided_at DESC LIMIT 1",
        [strategy],
    ).fetchall()
    if not rows:
        return ACTIVE, "never switched"
    return rows[0][0], f"{rows[0][1]} (by {rows[0][2]})"


def record_switch(con: duckdb.DuckDBPyConnection, strategy: str, state: str, reason: str, by: str, now=None) -> None:
    """Append a kill switch change; nothing is ever updated or deleted."""
    if state not in SWITCH_STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(SWITCH_STATES)}")
    if not reason or not reason.strip():
        raise ValueError("--reason: a kill switch change needs a reason")
    if not by or not by.strip():
        raise ValueError("--by: a kill switch change needs the name of who decided")
    row = {"strategy": strategy, "state": state, "reason": reason.strip(), "decided_by": by.strip()}
    append_log(con, SWITCH_LOG, [{**row, "decided_at": now or now_utc()}])


def open_breaks(con: duckdb.DuckDBPyConnection, strategy: str) -> pd.DataFrame:
    """Breaks recorded after the strategy's last resolution (they halt new orders)."""
    return con.execute(
        f'SELECT * FROM "{BREAKS.name}" WHERE strategy = ? AND recorded_at > coalesce('
        f"(SELECT max(decided_at) FROM \"{RESOLUTIONS.name}\" WHERE strategy = ?), TIMESTAMP '1900-01-01') "
        "ORDER BY recorded_at, symbol",
        [strategy, strategy],
    ).df()


def read_paper_book(con: duckdb.DuckDBPyConnection, strategy: str, start=None, end=None) -> pd.DataFrame:
    ensure_table(con, PAPER_BOOK)
    out = con.execute(
        f'SELECT * FROM "{PAPER_BOOK.name}" WHERE strategy = ? AND date BETWEEN ? AND ? ORDER BY date',
        [strategy, pd.Timestamp(start or "1900-01-01").date(), pd.Timestamp(end or "2200-01-01").date()],
    ).df()
    out["date"] = pd.to_datetime(out["date"])
    return out
