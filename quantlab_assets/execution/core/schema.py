"""Execution tables and the closed vocabularies (order events, ledger entry kinds, switch states).

Append-only: ``exec_order_events``, ``exec_ledger``, ``exec_breaks``, ``exec_resolutions`` and
``exec_switch_log`` (nothing is ever updated or deleted). Published through write-audit-publish:
``paper_book`` (one row per strategy and session). The simulated broker keeps its own venue state
in ``sim_broker_orders`` and ``sim_broker_ledger``.
"""

from __future__ import annotations

from quantlab_assets.common.warehouse import Column, TableSchema

# Order lifecycle events, as recorded in the ledger (the list, plus "refused": a pre-trade
# rule or the kill switch stopped it before the broker saw it).
SUBMITTED, ACCEPTED, PARTIALLY_FILLED, FILLED = "submitted", "accepted", "partially_filled", "filled"
CANCELED, REJECTED, EXPIRED, UNKNOWN, REFUSED = "canceled", "rejected", "expired", "unknown", "refused"
EVENTS = (SUBMITTED, ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, UNKNOWN, REFUSED)
TERMINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED, REFUSED})

# Ledger entry kinds: cash in, a fill, a corporate action, a person's adjustment after a break.
DEPOSIT, FILL, DIVIDEND, SPLIT, ADJUSTMENT = "deposit", "fill", "dividend", "split", "adjustment"
ENTRY_KINDS = (DEPOSIT, FILL, DIVIDEND, SPLIT, ADJUSTMENT)

# Kill switch states.
ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
SWITCH_STATES = (ACTIVE, REDUCING, HALTED)

BUY, SELL = "buy", "sell"

ORDER_EVENTS = TableSchema(
    name="exec_order_events",
    description="Append-only: every order's lifecycle as Quant Lab saw it, one row per event.",
    columns=(
        Column("date", "DATE", False, "session whose close decided the order"),
        Column("strategy", "VARCHAR", False),
        Column("client_order_id", "VARCHAR", False, "deterministic: strategy, session, symbol, intent"),
        Column("symbol", "VARCHAR", False),
        Column("side", "VARCHAR", False, "buy | sell"),
        Column("qty", "DOUBLE", False, "shares ordered (> 0)"),
        Column("price", "DOUBLE", description="the price the order was sized at (last close)"),
        Column("event", "VARCHAR", False, " | ".join(EVENTS)),
        Column("filled_qty", "DOUBLE", description="cumulative shares filled at this event"),
        Column("reason", "VARCHAR", description="why (a refusal names value and limit)"),
        Column("broker_order_id", "VARCHAR"),
        Column("run_id", "VARCHAR", False),
        Column("recorded_at", "TIMESTAMP", False),
    ),
)

LEDGER = TableSchema(
    name="exec_ledger",
    description="Append-only: what moved the paper account (cash, fills, dividends, splits, adjustments); "
    "positions and cash are this table replayed in seq order.",
    columns=(
        Column("seq", "BIGINT", False, "order of application"),
        Column("date", "DATE", False, "session the entry belongs to"),
        Column("strategy", "VARCHAR", False),
        Column("entry_id", "VARCHAR", False, "unique: a re-run appends nothing twice"),
        Column("kind", "VARCHAR", False, " | ".join(ENTRY_KINDS)),
        Column("symbol", "VARCHAR", description="NULL for a deposit"),
        Column("qty", "DOUBLE", False, "share delta (fill, adjustment); split ratio (split); 0 otherwise"),
        Column("price", "DOUBLE", description="fill price; dividend per share"),
        Column("cash_delta", "DOUBLE", False, "cash in (+) or out (-), fees included"),
        Column("fee", "DOUBLE", False, "fees of a fill (in cash_delta already)"),
        Column("client_order_id", "VARCHAR"),
        Column("recorded_at", "TIMESTAMP", False),
    ),
)

BREAKS = TableSchema(
    name="exec_breaks",
    description="Append-only: reconciliation breaks, ledger vs broker, per symbol (or $CASH).",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("phase", "VARCHAR", False, "start | end of the cycle"),
        Column("symbol", "VARCHAR", False),
        Column("ledger_qty", "DOUBLE", False),
        Column("broker_qty", "DOUBLE", False),
        Column("difference", "DOUBLE", False, "broker - ledger"),
        Column("tolerance", "DOUBLE", False),
        Column("run_id", "VARCHAR", False),
        Column("recorded_at", "TIMESTAMP", False),
    ),
)

RESOLUTIONS = TableSchema(
    name="exec_resolutions",
    date_column="decided_at",
    description="Append-only: a person's decision on a strategy's reconciliation breaks.",
    columns=(
        Column("strategy", "VARCHAR", False),
        Column("decision", "VARCHAR", False, "accept_broker (ledger adjusted to the broker) | ledger_correct"),
        Column("reason", "VARCHAR", False),
        Column("decided_by", "VARCHAR", False),
        Column("decided_at", "TIMESTAMP", False),
    ),
)

SWITCH_LOG = TableSchema(
    name="exec_switch_log",
    date_column="decided_at",
    description="Append-only: the kill switch of each strategy, every change with who and why.",
    columns=(
        Column("strategy", "VARCHAR", False),
        Column("state", "VARCHAR", False, " | ".join(SWITCH_STATES)),
        Column("reason", "VARCHAR", False),
        Column("decided_by", "VARCHAR", False),
        Column("decided_at", "TIMESTAMP", False),
    ),
)

PAPER_BOOK = TableSchema(
    name="paper_book",
    description="One row per (date, strategy): the paper account at the close beside the reference backtest "
    "of the approved targets, the drift split into its causes, and what the cycle did.",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("equity", "DOUBLE", False, "cash + positions at the close (ledger replay)"),
        Column("cash", "DOUBLE", False),
        Column("reference_equity", "DOUBLE", False, "the approved targets backtested under the same conventions"),
        Column("drift", "DOUBLE", False, "the day's P&L gap, paper - reference"),
        Column("drift_fill_price", "DOUBLE", False, "fills at a price other than the open"),
        Column("drift_sizing", "DOUBLE", False, "shares ordered vs the reference's (rounding, min trade)"),
        Column("drift_costs", "DOUBLE", False, "fees"),
        Column("drift_missed", "DOUBLE", False, "shares ordered but not filled (partial, rejected)"),
        Column("drift_corporate", "DOUBLE", False, "dividends credited differently"),
        Column("drift_carried", "DOUBLE", False, "earlier days' position differences over this day"),
        Column("drift_other", "DOUBLE", False, "what the parts leave (floating point only)"),
        Column("orders", "BIGINT", False, "orders submitted this cycle"),
        Column("refused", "BIGINT", False, "orders refused by a pre-trade rule or the switch"),
        Column("fills", "BIGINT", False, "fills collected this cycle"),
        Column("open_orders", "BIGINT", False, "orders not in a final state after the cycle"),
        Column("breaks", "BIGINT", False, "reconciliation breaks found this cycle"),
        Column("switch", "VARCHAR", False, "the kill switch during the cycle"),
    ),
)

SIM_ORDERS = TableSchema(
    name="sim_broker_orders",
    date_column="submitted_for",
    description="The simulated broker's orders (its venue state; one row per client order id, replaced on change).",
    columns=(
        Column("account", "VARCHAR", False),
        Column("client_order_id", "VARCHAR", False),
        Column("broker_order_id", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("side", "VARCHAR", False),
        Column("qty", "DOUBLE", False),
        Column("submitted_for", "DATE", False, "the session whose close decided it; fills at the next open"),
        Column("status", "VARCHAR", False),
        Column("filled_qty", "DOUBLE", False),
        Column("filled_avg_price", "DOUBLE"),
        Column("reason", "VARCHAR"),
    ),
)

SIM_LEDGER = TableSchema(
    name="sim_broker_ledger",
    description="The simulated broker's own account entries (same shape as exec_ledger; strategy = account).",
    columns=LEDGER.columns,
)
