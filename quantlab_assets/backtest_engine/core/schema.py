"""The backtest's warehouse tables, one set shared by all strategies, keyed by (date, strategy):
equity, positions, trades, state, the spec each session ran under, and the KPIs."""

from __future__ import annotations

from quantlab_assets.backtest_engine.core.engine import EQUITY_COLUMNS, POSITION_COLUMNS, STATE_COLUMNS, TRADE_COLUMNS
from quantlab_assets.backtest_engine.core.kpis import KPI_COLUMNS
from quantlab_assets.common.warehouse import Column, TableSchema

_TYPES = {
    "date": "DATE",
    "decision_date": "DATE",
    "symbol": "VARCHAR",
    "side": "VARCHAR",
    "scope": "VARCHAR",
    "sessions": "BIGINT",
    "drawdown_duration": "DOUBLE",
}


def _schema(name: str, columns, description: str) -> TableSchema:
    cols = [Column("date", "DATE", False), Column("strategy", "VARCHAR", False)]
    cols += [Column(c, _TYPES.get(c, "DOUBLE"), nullable=c != "symbol") for c in columns if c != "date"]
    return TableSchema(name=name, columns=tuple(cols), description=description)


BACKTEST_EQUITY = _schema(
    "backtest_equity",
    [*EQUITY_COLUMNS, "benchmark_ret"],
    "Daily book of each strategy after the close: equity, cash, exposure, costs, P&L.",
)
BACKTEST_POSITIONS = _schema("backtest_positions", POSITION_COLUMNS, "Non-zero holdings after each close.")
BACKTEST_TRADES = _schema(
    "backtest_trades", TRADE_COLUMNS, "Fills at the open of the session after the decision, with costs."
)
BACKTEST_STATE = _schema(
    "backtest_state",
    STATE_COLUMNS,
    "State after each close (shares, marks, pending decision, cash row): what the next day resumes from.",
)
BACKTEST_SPEC = TableSchema(
    name="backtest_spec",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("spec_version", "VARCHAR", False, "content hash of the strategy spec the session was simulated under"),
        Column("spec", "VARCHAR", False, "that spec, JSON"),
    ),
    description="The strategy spec each session's book and state were built under (the resume rule reads it).",
)
BACKTEST_KPIS = _schema(
    "backtest_kpis",
    ["scope", "sessions", *KPI_COLUMNS, "pnl_gross", "pnl_net", "costs_paid"],
    "KPIs as of each date: since the strategy's first session and over the trailing 252.",
)
