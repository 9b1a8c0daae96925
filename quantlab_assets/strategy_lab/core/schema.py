"""The strategy lab's warehouse tables: ``targets`` (every strategy's book) and ``predictions``
(a model strategy's walk-forward scores), both keyed by (date, strategy, symbol)."""

from __future__ import annotations

from quantlab_assets.common.warehouse import Column, TableSchema

TARGETS = TableSchema(
    name="targets",
    description="Target weights per (date, strategy, symbol), decided at the close of date.",
    columns=(
        Column("date", "DATE", False, "decision date (close); filled at the next session's open"),
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("score", "DOUBLE", description="signal, higher = more attractive; NULL if not scorable"),
        Column("weight", "DOUBLE", False, "target weight of equity (negative = short)"),
        Column("rebalance", "BOOLEAN", False, "a decision day: the backtest trades to these weights"),
    ),
)


PREDICTIONS = TableSchema(
    name="predictions",
    description="A model strategy's walk-forward score per (date, strategy, symbol), with the fit it came from.",
    columns=(
        Column("date", "DATE", False, "decision date (close): scored from that day's features"),
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("score", "DOUBLE", False, "the model's prediction of the label, higher = more attractive"),
        Column("model_version", "VARCHAR", False, "hash of the model's parameters and what it learned"),
        Column("refit_date", "DATE", False, "the close the model was fitted at (<= date)"),
        Column("train_start", "DATE", False, "first label date trained on"),
        Column("train_end", "DATE", False, "last label date trained on (its exit bar <= refit_date)"),
    ),
)
