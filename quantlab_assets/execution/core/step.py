"""One partition of a strategy's paper trading: its sessions' cycles, the ``paper_book`` rows and
their audit, in memory.

:func:`execution_partition` is the one entry the Dagster step calls. Sessions run in order, each
one cycle (``core.cycle.run_cycle``); a session on or before the strategy's last published
``paper_book`` day, or before the ledger's last entry, is not traded again (its row is recomputed
from the ledger; the broker is not called). A cycle that
finds a reconciliation break stops the partition: nothing further is submitted and the gate's
``reconciled`` rule fails, naming the symbols and quantities. The broker's and the ledger's
append-only logs keep what happened either way; ``paper_book`` is published only if the gate
passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.gates import GateResult, inputs_missing_reason, not_evaluated, upstream_complete
from quantlab_assets.common.warehouse import ensure_table, read_strategy_slice
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.broker import Broker
from quantlab_assets.execution.core.compare import DRIFT_PARTS, ordered_frame, reference_and_drift
from quantlab_assets.execution.core.cycle import Cycle, CycleResult, run_cycle
from quantlab_assets.execution.core.gate import cash_not_negative, drift_parts_sum, reconciled
from quantlab_assets.execution.core.schema import BREAKS, FILL, PAPER_BOOK, REFUSED, REJECTED, SUBMITTED, TERMINAL
from quantlab_assets.portfolio_supervisor.core.schema import APPROVED_TARGETS

BOOK_COLUMNS = ["date", "symbol", "weight"]


@dataclass
class Execution:
    paper_book: pd.DataFrame
    upstream: GateResult
    rules: list[GateResult] = field(default_factory=list)
    cycles: list[CycleResult] = field(default_factory=list)

    def audit(self) -> list[GateResult]:
        return [self.upstream, *self.rules]


def read_books(con: duckdb.DuckDBPyConnection, strategy: str, start, end) -> pd.DataFrame:
    return read_strategy_slice(con, APPROVED_TARGETS, strategy, start, end, columns=BOOK_COLUMNS)


def _ohlcv_days(con, start, end) -> list:
    ensure_table(con, OHLCV)
    rows = con.execute(
        f'SELECT DISTINCT date FROM "{OHLCV.name}" WHERE date BETWEEN ? AND ?',
        [pd.Timestamp(start).date(), pd.Timestamp(end).date()],
    ).fetchall()
    return [r[0] for r in rows]


def _bars(con, start, end) -> pd.DataFrame:
    out = con.execute(
        f'SELECT date, symbol, open, close, dividend, split_coefficient FROM "{OHLCV.name}" '
        "WHERE date BETWEEN ? AND ? ORDER BY date, symbol",
        [pd.Timestamp(start).date(), pd.Timestamp(end).date()],
    ).df()
    out["date"] = pd.to_datetime(out["date"])
    return out


def _upstream(con, strategy, books, start, end, made_by, last_cycle) -> GateResult:
    gate = upstream_complete(
        {
            "approved_targets": (books["date"].unique(), made_by.get("approved_targets", "approved_targets")),
            "ohlcv": (_ohlcv_days(con, start, end), made_by.get("ohlcv", "ohlcv")),
        },
        start,
        end,
    )
    sessions = trading_days(start, end)
    if gate.passed and last_cycle is not None and len(sessions) and sessions[0] > shift_sessions(last_cycle, 1):
        expected = shift_sessions(last_cycle, 1).date()
        return GateResult(
            gate.name,
            False,
            f"{strategy} last traded on {last_cycle.date()}: run the paper book from {expected} first "
            f"(sessions trade in order; {sessions[0].date()} was asked); nothing was written",
        )
    return gate


def execution_partition(
    con: duckdb.DuckDBPyConnection,
    broker: Broker,
    cycle: Cycle,
    start,
    end,
    made_by: Mapping[str, str] | None = None,
) -> Execution:
    """Trade [start, end] for ``cycle.strategy`` and audit the ``paper_book`` rows (see the module docstring)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise ValueError(
            "paper trading needs the DuckDB warehouse (QUANTLAB_WAREHOUSE_BACKEND=duckdb): its ledger and the "
            f"simulated venue are transactional DuckDB tables; got {type(con).__name__}"
        )
    store.ensure_all(con)
    strategy = cycle.strategy
    books = read_books(con, strategy, start, end)
    published = store.read_paper_book(con, strategy)
    last_cycle = published["date"].max() if len(published) else None
    upstream = _upstream(con, strategy, books, start, end, made_by or {}, last_cycle)
    empty = pd.DataFrame(columns=PAPER_BOOK.column_names)
    if not upstream.passed:
        rules = [reconciled(pd.DataFrame(), pd.DataFrame(), strategy), drift_parts_sum(empty), cash_not_negative(empty)]
        return Execution(empty, upstream, not_evaluated(rules, inputs_missing_reason(upstream)))
    cycles, breaks = [], pd.DataFrame()
    ledger = store.read_ledger(con, strategy)
    ledger_last = ledger["date"].max() if len(ledger) else None  # a session before it is past: not traded again
    for session in trading_days(start, end):
        book = books[books["date"] == session].set_index("symbol")["weight"]
        if (last_cycle is not None and session <= last_cycle) or (ledger_last is not None and session < ledger_last):
            cycles.append(CycleResult(session, replayed=True))
            continue
        result = run_cycle(con, broker, cycle, session, book)
        cycles.append(result)
        if len(result.breaks):
            breaks = result.breaks.assign(date=session, phase="start or end")
            break
    done = cycles[-1].session if cycles else None
    frame = paper_rows(con, strategy, start, done, cycle.policy.cash_buffer, cycles) if done is not None else empty
    unresolved = store.open_breaks(con, strategy) if breaks.empty else pd.DataFrame()
    rules = [reconciled(breaks, unresolved, strategy), drift_parts_sum(frame), cash_not_negative(frame)]
    return Execution(frame, upstream, rules, cycles)


def paper_rows(con, strategy: str, start, end, cash_buffer: float, cycles: list[CycleResult]) -> pd.DataFrame:
    """``paper_book`` rows of [start, end]: the ledger replayed beside the reference, and counts."""
    ledger = store.read_ledger(con, strategy)
    if ledger.empty:
        return pd.DataFrame(columns=PAPER_BOOK.column_names)
    first = ledger["date"].min()
    days = trading_days(first, end)
    books = read_books(con, strategy, first, end)
    events = store.read_events(con, strategy)
    drift = reference_and_drift(_bars(con, first, end), books, ledger, ordered_frame(events), days, cash_buffer)
    drift = drift[drift["date"] >= pd.Timestamp(start)].reset_index(drop=True)
    last = store.latest_events(events)
    open_now = int((~last["event"].isin(TERMINAL)).sum()) if len(last) else 0
    ensure_table(con, BREAKS)
    broke = con.execute(f'SELECT date, count(*) FROM "{BREAKS.name}" WHERE strategy = ? GROUP BY date', [strategy])
    per_day_breaks = {pd.Timestamp(d): int(n) for d, n in broke.fetchall()}
    switch = {c.session: c.switch for c in cycles if not c.replayed}
    state_now = store.switch_state(con, strategy)[0]

    def count(frame: pd.DataFrame, day) -> int:
        return int((frame["date"] == day).sum())

    fills = ledger[ledger["kind"] == FILL]
    sent = events[events["event"] == SUBMITTED]
    out = drift.assign(strategy=strategy)
    out = out.rename(columns={p: f"drift_{p}" for p in DRIFT_PARTS})
    out["orders"] = [count(sent, d) for d in out["date"]]
    out["refused"] = [count(events[events["event"] == REFUSED], d) for d in out["date"]]
    out["fills"] = [count(fills, d) for d in out["date"]]
    # Orders left open after D's close (they fill at the next open); on the last day, every order still open.
    out["open_orders"] = [count(sent, d) - count(events[events["event"] == REJECTED], d) for d in out["date"]]
    if len(out):
        out.loc[out.index[-1], "open_orders"] = open_now
    out["breaks"] = [per_day_breaks.get(d, 0) for d in out["date"]]
    out["switch"] = [switch.get(d, state_now) for d in out["date"]]
    return out[PAPER_BOOK.column_names]
