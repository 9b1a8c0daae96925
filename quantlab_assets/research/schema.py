"""Research's warehouse tables: ``experiments`` (every recorded backtest, sweep and model run) and
``experiment_results`` (one row per sweep variant). Research has no ``core/`` package; this module
is its ``schema.py`` role all the same: declarations only."""

from __future__ import annotations

from quantlab_assets.common.warehouse import Column, TableSchema

# The KPIs a sweep scores each variant on, in and out of sample (``sweep.KPIS`` computes them in
# this order; a test keeps the two equal).
SWEEP_KPIS = ("sharpe", "cagr", "volatility", "max_drawdown", "total_return")

EXPERIMENTS = TableSchema(
    name="experiments",
    date_column="recorded_at",
    description="Recorded research backtests and sweeps: spec, code and data versions, results.",
    columns=(
        Column("id", "VARCHAR", False),
        Column("kind", "VARCHAR", False, "backtest, sweep or model (one trained model of a walk-forward)"),
        Column("name", "VARCHAR", False, "strategy or sweep name"),
        Column("spec", "VARCHAR", False, "what ran, JSON (a strategy spec, or a sweep's variants and folds)"),
        Column("spec_hash", "VARCHAR", False),
        Column("code_version", "VARCHAR", False),
        Column("start", "DATE", False),
        Column("end", "DATE", False),
        Column("data_version", "VARCHAR", False, "hash of the features and bars read"),
        Column("results", "VARCHAR", False, "headline numbers, JSON"),
        Column("recorded_at", "TIMESTAMP", False),
    ),
)


EXPERIMENT_RESULTS = TableSchema(
    name="experiment_results",
    date_column="recorded_at",
    description="One row per sweep variant: parameters, in-sample and out-of-sample KPIs, turnover, costs.",
    columns=(
        Column("sweep", "VARCHAR", False),
        Column("variant", "VARCHAR", False),
        Column("params", "VARCHAR", False, "the grid values of this variant, JSON"),
        Column("spec_hash", "VARCHAR", False, "sha256 of the variant's full spec, 12 hex digits"),
        *(
            Column(f"{p}_{k}", "DOUBLE", description=f"{k}, {'in' if p == 'is' else 'out of'} sample (mean over folds)")
            for p in ("is", "oos")
            for k in SWEEP_KPIS
        ),
        Column("turnover", "DOUBLE", description="mean daily turnover over the whole range"),
        Column("costs", "DOUBLE", description="costs paid over the whole range, in currency"),
        Column("is_rank", "INTEGER", False, "rank by in-sample Sharpe (1 = best)"),
        Column("folds", "VARCHAR", False, "per fold: periods and Sharpe ratios, JSON"),
        Column("experiment_id", "VARCHAR", False),
        Column("recorded_at", "TIMESTAMP", False),
    ),
)
