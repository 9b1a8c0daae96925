"""The backtest engine's asset factory: ``<strategy>/backtest`` and ``<strategy>/backtest_kpis``.

State (positions, cash, the pending decision) carries from the previous session through the
``backtest_state`` table, so a daily run resumes exactly where a backfill would be.
"""

import dagster as dg
import pandas as pd

from quantlab_assets.backtest_engine.core.engine import run_backtest
from quantlab_assets.backtest_engine.core.kpis import KPI_COLUMNS, kpi_table
from quantlab_assets.backtest_engine.core.report import backtest_summary_markdown, equity_drawdown_png
from quantlab_assets.backtest_engine.core.store import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_STATE,
    BACKTEST_TRADES,
    equal_weight_benchmark,
    with_strategy,
)
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import read_strategy_slice, replace_strategy_slice
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.feature_store.core.store import read_bars
from quantlab_assets.metadata import column_schema, detail, preview
from quantlab_assets.partitions import (
    PREVIOUS_AND_SAME_SESSION,
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
)
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import targets_key, universe_of
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import TARGETS

GROUP = "backtest_engine"
FIRST_SESSION = "1990-01-01"


def backtest_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([name, "backtest"])


def kpis_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([name, "backtest_kpis"])


def load_state(con, name: str, start) -> pd.DataFrame | None:
    """State after the close before ``start``; None for a strategy's first run. A gap (history
    before but no state the session before) is an error: resuming across it would be wrong."""
    prev = shift_sessions(start, -1)
    state = read_strategy_slice(con, BACKTEST_STATE, name, prev, prev)
    if len(state):
        return state
    earlier = read_strategy_slice(con, BACKTEST_STATE, name, FIRST_SESSION, prev)
    if len(earlier):
        last = earlier["date"].max().date()
        raise dg.Failure(description=f"{name}: no backtest state for {prev.date()} but history up to {last}: "
                                     f"materialize the backtest from {shift_sessions(last, 1).date()} first")
    return None


def build_backtest_assets(spec: StrategySpec) -> dg.AssetsDefinition:
    name = spec.name

    @dg.multi_asset(
        name=f"{name}__backtest",
        specs=[
            dg.AssetSpec(backtest_key(name), group_name=GROUP, kinds={"duckdb", "numpy"},
                         deps=[dg.AssetDep(targets_key(name), partition_mapping=PREVIOUS_AND_SAME_SESSION), ohlcv,
                               dg.AssetDep(backtest_key(name), partition_mapping=PREVIOUS_SESSION)],
                         description=f"Simulated book of '{name}': daily equity, positions, trades and the "
                                     "state the next session resumes from.", owners=["team:backtest_engine"]),
            dg.AssetSpec(kpis_key(name), group_name=GROUP, kinds={"duckdb"}, deps=[backtest_key(name)],
                         description=f"KPIs of '{name}' as of each date, since start and trailing 252 sessions.",
                         owners=["team:backtest_engine"]),
        ],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=False,
    )
    def _backtest(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                  market_data: MarketDataResource, artifacts: ArtifactsResource):
        start, end = partition_dates(context)
        universe = universe_of(market_data.registry(), spec)
        with warehouse.get_connection() as con:
            state = load_state(con, name, start)
            bars = read_bars(con, shift_sessions(start, -1), end, symbols=universe)
            targets = read_strategy_slice(con, TARGETS, name, start, end)
            decisions = targets[targets["rebalance"]][["date", "symbol", "weight"]]
            out = run_backtest(bars[bars["date"] >= pd.Timestamp(start)], decisions, start, end, state=state,
                               fee_bps=spec.costs.fee_bps, slippage_bps=spec.costs.slippage_bps,
                               capital=spec.capital, borrow_bps=spec.costs.borrow_bps,
                               cash_interest_bps=spec.costs.cash_interest_bps,
                               max_participation=spec.costs.max_participation)
            bench = equal_weight_benchmark(bars)
            equity = out.equity.assign(benchmark_ret=bench.reindex(out.equity["date"]).to_numpy())
            replace_strategy_slice(con, BACKTEST_EQUITY, equity, name, start, end)
            replace_strategy_slice(con, BACKTEST_POSITIONS, out.positions, name, start, end)
            replace_strategy_slice(con, BACKTEST_TRADES, out.trades, name, start, end)
            replace_strategy_slice(con, BACKTEST_STATE, out.states, name, start, end)
            # KPIs as of each date are computed over the whole stored history, then the run's
            # dates are written: identical whether the history came in one run or many.
            history = read_strategy_slice(con, BACKTEST_EQUITY, name, FIRST_SESSION, end)
            table = kpi_table(history[["date", "ret", "turnover"]],
                              history.set_index("date")["benchmark_ret"])
            table = add_pnl(table, history)
            table = table[(table["date"] >= pd.Timestamp(start)) & (table["date"] <= pd.Timestamp(end))]
            replace_strategy_slice(con, BACKTEST_KPIS, table, name, start, end)
        last = table[table["date"] == table["date"].max()] if len(table) else table
        png = equity_drawdown_png(history, history.set_index("date")["benchmark_ret"], f"{name}") if len(history) > 1 else b""
        run_dir = artifacts.run_dir(context.run.run_id)
        chart = f"backtest_{name}.png"
        if png:
            (run_dir / "reports" / chart).write_bytes(png)
        report = backtest_summary_markdown(name, start, end, last, out.trades, out.skipped,
                                           spec.costs.fee_bps, spec.costs.slippage_bps, chart) if len(last) else \
            f"## {name}\n\nno session in {start}..{end}\n"
        artifacts.write_section(context.run.run_id, "backtest_summary.md", name, report, title="Backtest summary")
        _append_trades_csv(run_dir / "trades.csv", with_strategy(out.trades, name), name)
        since = last[last["scope"] == "since_start"]
        headline = {k: float(since[k].iloc[0]) for k in KPI_COLUMNS if len(since) and pd.notna(since[k].iloc[0])}
        yield dg.MaterializeResult(asset_key=backtest_key(name), metadata={
            "dagster/row_count": len(equity),
            "dagster/column_schema": column_schema(BACKTEST_EQUITY),
            "trades": len(out.trades), "skipped_orders": len(out.skipped),
            "final_equity": float(equity["equity"].iloc[-1]) if len(equity) else float("nan"),
            "equity_and_drawdown": detail(
                context, f"![equity](data:image/png;base64,{_b64(png)})" if png else "_not enough sessions to plot_",
                chart),
            "trades_preview": preview(out.trades.tail(10)),
        })
        yield dg.MaterializeResult(asset_key=kpis_key(name), metadata={
            "dagster/row_count": len(table),
            "dagster/column_schema": column_schema(BACKTEST_KPIS),
            **headline,
            "summary": detail(context, report, "backtest_summary.md"),
        })

    return _backtest


def add_pnl(table: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Gross and net P&L and costs paid per KPI row: since start, or over the trailing window."""
    flows = history.set_index("date")[["pnl_gross", "pnl_net", "costs"]].rename(columns={"costs": "costs_paid"})
    parts = []
    for scope, rows in table.groupby("scope", sort=False):
        summed = flows.cumsum() if scope == "since_start" else \
            flows.rolling(int(scope.rsplit("_", 1)[1]), min_periods=int(scope.rsplit("_", 1)[1])).sum()
        parts.append(rows.join(summed, on="date"))
    return pd.concat(parts).sort_values(["date", "scope"], kind="stable").reset_index(drop=True)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _append_trades_csv(path, trades: pd.DataFrame, name: str) -> None:
    """``trades.csv`` of the run holds every strategy's fills; a strategy's rows are replaced."""
    if path.exists():
        existing = pd.read_csv(path)
        trades = pd.concat([existing[existing["strategy"] != name], trades], ignore_index=True)
    trades.to_csv(path, index=False)
