"""One execution cycle per session: the order path from an approved book to the broker and back.

:func:`run_cycle` is the order path for session ``D`` of a strategy, after D's close:

1. the broker is advanced to D (``sync``: the simulated venue applies D's corporate actions and
   fills the orders of D-1 at D's open; Alpaca is live and needs nothing);
2. the ledger is funded on its first session (the broker's cash), D's dividends and splits are
   appended for the positions held at D-1's close, and every open order is asked for by its
   client order id: new fills and status changes are appended (``collect``);
3. start reconciliation: a break is recorded and ends the cycle (nothing is submitted);
4. orders are planned from D's approved book and the account at D's close, judged by the
   pre-trade rules and the kill switch (an unresolved break acts as HALTED), and submitted:
   an id the ledger already has is skipped, an id the broker already has is recorded, not sent
   again (a restart between a submission and its record sends nothing twice);
5. end reconciliation.

A session before the strategy's last cycle is not traded again: its row is recomputed from the
ledger, and the broker is not called.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.broker import Broker, BrokerError, BrokerOrder, DuplicateClientOrderId
from quantlab_assets.execution.core.ledger import (
    Account,
    corporate_entries,
    deposit_entry,
    entry,
    fill_entry,
    new_fill,
    replay,
)
from quantlab_assets.execution.core.orders import Order, OrderPolicy, plan_orders
from quantlab_assets.execution.core.recon import CASH_SYMBOL, describe_breaks, reconcile
from quantlab_assets.execution.core.risk import TradeLimits, pre_trade
from quantlab_assets.execution.core.schema import (
    ADJUSTMENT,
    BREAKS,
    FILL,
    HALTED,
    ORDER_EVENTS,
    PARTIALLY_FILLED,
    REFUSED,
    REJECTED,
    RESOLUTIONS,
    SUBMITTED,
    TERMINAL,
    UNKNOWN,
)

# How far back a position's last close is looked for (a symbol without a bar that long is an error).
MARK_LOOKBACK_DAYS = 40


@dataclass
class CycleResult:
    session: pd.Timestamp
    submitted: int = 0
    refused: list[str] = field(default_factory=list)
    fills: int = 0
    breaks: pd.DataFrame = field(default_factory=pd.DataFrame)
    switch: str = "ACTIVE"
    replayed: bool = False  # a past session: recomputed, not traded


@dataclass
class Cycle:
    """What one cycle needs besides the warehouse and the broker."""

    strategy: str
    policy: OrderPolicy
    limits: TradeLimits
    run_id: str


def _event(cycle: Cycle, day, order: BrokerOrder | Order, event: str, filled=None, reason=None, broker_id=None):
    return {
        "date": pd.Timestamp(day),
        "strategy": cycle.strategy,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "qty": float(order.qty),
        "price": float(order.price) if isinstance(order, Order) else None,
        "event": event,
        "filled_qty": filled,
        "reason": reason,
        "broker_order_id": broker_id,
        "run_id": cycle.run_id,
        "recorded_at": store.now_utc(),
    }


def market(con: duckdb.DuckDBPyConnection, session, symbols) -> pd.DataFrame:
    """symbol, open, close, volume, dividend, split_coefficient on ``session`` and ``mark`` (the
    last close on or before it) for ``symbols``."""
    day = pd.Timestamp(session)
    return con.execute(
        f"""SELECT s.symbol, b.open, b.close, b.volume, b.dividend, b.split_coefficient, m.mark
            FROM (SELECT unnest(?::VARCHAR[]) AS symbol) s
            LEFT JOIN "{OHLCV.name}" b ON b.symbol = s.symbol AND b.date = ?
            LEFT JOIN (SELECT symbol, arg_max(close, date) AS mark FROM "{OHLCV.name}"
                       WHERE date BETWEEN ? AND ? AND close IS NOT NULL GROUP BY symbol) m ON m.symbol = s.symbol
            ORDER BY s.symbol""",
        [sorted(set(symbols)), day.date(), (day - pd.Timedelta(days=MARK_LOOKBACK_DAYS)).date(), day.date()],
    ).df()


def collect(con, broker: Broker, cycle: Cycle, session) -> int:
    """Ask the broker for every open order; append new fills and status changes. Returns the fills."""
    events = store.read_events(con, cycle.strategy)
    last = store.latest_events(events)
    ledger = store.read_ledger(con, cycle.strategy)
    fills, rows, new_events = 0, [], []
    for coid, ev in last[~last["event"].isin(TERMINAL)].iterrows():
        order = broker.get_order(str(coid))
        if order is None:  # asked twice by id and not there: it was never placed
            event, why = (
                (REJECTED, "never placed: the broker has no order with this id")
                if ev["event"] == UNKNOWN
                else (
                    UNKNOWN,
                    "the broker has no order with this id",
                )
            )
            new_events.append(_event(cycle, ev["date"], _as_order(ev, coid), event, reason=why))
            continue
        mine = ledger[(ledger["client_order_id"] == coid) & (ledger["kind"] == FILL)]
        got = new_fill(
            order.side,
            float(mine["qty"].abs().sum()),
            float((mine["qty"].abs() * mine["price"]).sum()),
            order.filled_qty,
            order.filled_avg_price,
        )
        if got is not None:
            qty, price = got
            rows.append(
                fill_entry(
                    session, cycle.strategy, str(coid), order.symbol, order.side, order.filled_qty, qty, price, 0.0
                )
            )
            fills += 1
        before = float(ev["filled_qty"]) if pd.notna(ev["filled_qty"]) else 0.0
        if order.status != ev["event"] or order.filled_qty != before:
            if order.filled_qty > before and order.status not in (PARTIALLY_FILLED, "filled"):
                new_events.append(
                    _event(cycle, ev["date"], order, PARTIALLY_FILLED, order.filled_qty, None, order.broker_order_id)
                )
            new_events.append(
                _event(cycle, ev["date"], order, order.status, order.filled_qty, order.reason, order.broker_order_id)
            )
    store.append_ledger(con, rows)
    store.append_log(con, ORDER_EVENTS, new_events)
    return fills


def _as_order(ev, coid) -> BrokerOrder:
    return BrokerOrder(
        str(coid), str(ev["broker_order_id"] or ""), ev["symbol"], ev["side"], float(ev["qty"]), ev["event"]
    )


def _record_breaks(con, cycle: Cycle, session, phase: str, breaks: pd.DataFrame) -> None:
    rows = breaks.assign(
        date=pd.Timestamp(session),
        strategy=cycle.strategy,
        phase=phase,
        run_id=cycle.run_id,
        recorded_at=store.now_utc(),
    )
    store.append_log(con, BREAKS, rows[BREAKS.column_names].to_dict("records"))


def _reconcile(con, broker: Broker, cycle: Cycle, session, phase: str) -> pd.DataFrame:
    breaks = reconcile(replay(store.read_ledger(con, cycle.strategy)), broker.positions(), broker.cash())
    if len(breaks):
        _record_breaks(con, cycle, session, phase, breaks)
    return breaks


def submit(con, broker: Broker, cycle: Cycle, session, orders: list[Order], known: set[str]) -> int:
    """Send each order whose id the ledger does not know; an id the broker knows is recorded only.

    The events are appended after the broker calls: a restart in between finds the order at the
    broker by its id on the next run and records it then, never sending it again."""
    sent, rows = 0, []
    try:
        for order in orders:
            if order.client_order_id in known:
                continue
            try:
                answer = broker.get_order(order.client_order_id)
                if answer is None:
                    try:
                        answer = broker.submit(order, session)
                        sent += 1
                    except DuplicateClientOrderId:
                        answer = broker.get_order(order.client_order_id)
            except BrokerError as exc:  # the next cycle asks for it by id: never sent twice
                rows.append(_event(cycle, session, order, UNKNOWN, 0.0, str(exc)))
                continue
            bid = answer.broker_order_id if answer else None
            rows.append(_event(cycle, session, order, SUBMITTED, 0.0, None, bid))
            if answer is not None:
                rows.append(_event(cycle, session, order, answer.status, answer.filled_qty, answer.reason, bid))
    finally:
        store.append_log(con, ORDER_EVENTS, rows)
    return sent


def run_cycle(con, broker: Broker, cycle: Cycle, session, book: pd.Series) -> CycleResult:
    """The order path for one session (see the module docstring); ``book``: symbol -> weight."""
    session = pd.Timestamp(session)
    store.ensure_all(con)
    result = CycleResult(session)
    broker.sync(session)
    ledger = store.read_ledger(con, cycle.strategy)
    if ledger.empty:
        store.append_ledger(con, [deposit_entry(session, cycle.strategy, broker.cash())])
        ledger = store.read_ledger(con, cycle.strategy)
    before = replay(ledger[ledger["date"] < session])
    bars = market(con, session, set(before.shares) | set(book.index))
    store.append_ledger(con, corporate_entries(session, cycle.strategy, before, bars))
    result.fills = collect(con, broker, cycle, session)
    result.breaks = _reconcile(con, broker, cycle, session, "start")
    if len(result.breaks):
        return result
    state, why = store.switch_state(con, cycle.strategy)
    unresolved = store.open_breaks(con, cycle.strategy)
    if len(unresolved):
        state, why = HALTED, f"unresolved reconciliation break: {describe_breaks(unresolved, 2)}"
    result.switch = state
    ledger = store.read_ledger(con, cycle.strategy)
    account = replay(ledger[ledger["date"] <= session])  # the account at D's close, whatever came later
    bars = market(con, session, set(account.shares) | set(book.index))  # today's fills may add names
    orders = _plan(cycle, session, book, account, bars)
    events = store.read_events(con, cycle.strategy)
    known = set(events["client_order_id"])
    today = events[(events["date"] == session) & (events["event"] == SUBMITTED)]
    fresh = [o for o in orders if o.client_order_id not in known]
    marks = bars.set_index("symbol")
    verdicts = pre_trade(
        fresh,
        cycle.limits,
        state,
        why,
        account.positions(),
        marks["volume"],
        marks["mark"],
        float((today["qty"] * today["price"]).sum()),
        len(today),
    )
    refused = [v for v in verdicts if not v.allowed]
    store.append_log(con, ORDER_EVENTS, [_event(cycle, session, v.order, REFUSED, 0.0, v.reason) for v in refused])
    result.refused = [str(v.reason) for v in refused]
    result.submitted = submit(con, broker, cycle, session, [v.order for v in verdicts if v.allowed], known)
    result.breaks = _reconcile(con, broker, cycle, session, "end")
    return result


def _plan(cycle: Cycle, session, book: pd.Series, account: Account, bars: pd.DataFrame) -> list[Order]:
    held = account.positions()
    return plan_orders(
        cycle.strategy, session, book, held, account.cash, bars.set_index("symbol")["mark"], cycle.policy
    )


def previous_session(session) -> pd.Timestamp:
    return shift_sessions(session, -1)


ACCEPT_BROKER, LEDGER_CORRECT = "accept_broker", "ledger_correct"
DECISIONS = (ACCEPT_BROKER, LEDGER_CORRECT)


def resolve_breaks(con, broker: Broker, strategy: str, decision: str, reason: str, by: str, session) -> pd.DataFrame:
    """A person's decision on the strategy's breaks, appended to ``exec_resolutions``.

    ``accept_broker``: the ledger takes the broker's positions and cash (adjustment entries, dated
    ``session``, for each difference found now); ``ledger_correct``: the ledger stands (the broker
    was fixed by hand). Either way new orders may go out again; a difference still there is a new
    break at the next cycle. Returns the adjustments appended."""
    if decision not in DECISIONS:
        raise ValueError(f"--decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if not reason or not reason.strip() or not by or not by.strip():
        raise ValueError("a resolution needs --reason and --by (who decided)")
    store.ensure_all(con)
    rows = []
    if decision == ACCEPT_BROKER:
        breaks = reconcile(replay(store.read_ledger(con, strategy)), broker.positions(), broker.cash())
        stamp = store.now_utc().isoformat()
        for b in breaks.itertuples():
            cash = b.symbol == CASH_SYMBOL
            rows.append(
                entry(
                    session,
                    strategy,
                    f"{strategy}:adjust:{stamp}:{b.symbol}",
                    ADJUSTMENT,
                    None if cash else b.symbol,
                    0.0 if cash else b.difference,
                    None,
                    b.difference if cash else 0.0,
                )
            )
    appended = store.append_ledger(con, rows)
    store.append_log(
        con,
        RESOLUTIONS,
        [
            {
                "strategy": strategy,
                "decision": decision,
                "reason": reason.strip(),
                "decided_by": by.strip(),
                "decided_at": store.now_utc(),
            }
        ],
    )
    return appended


def cancel_open_orders(con, broker: Broker, cycle: Cycle, reason: str) -> int:
    """Ask the broker to cancel every order not in a final state (allowed in every switch state,
    HALTED included); the broker's answer is recorded. Returns the orders canceled."""
    last = store.latest_events(store.read_events(con, cycle.strategy))
    rows, canceled = [], 0
    for coid, ev in (last[~last["event"].isin(TERMINAL)] if len(last) else last).iterrows():
        answer = broker.cancel(str(coid))
        if answer is None:
            continue
        canceled += answer.status == "canceled"
        why = f"{reason} (canceled on request)" if answer.status == "canceled" else answer.reason
        rows.append(_event(cycle, ev["date"], answer, answer.status, answer.filled_qty, why, answer.broker_order_id))
    store.append_log(con, ORDER_EVENTS, rows)
    return canceled
