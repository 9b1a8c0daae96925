"""The backtest engine's asset factory: ``<strategy>/<strategy>_backtest`` and ``<strategy>/<strategy>_backtest_kpis``.

State (positions, cash, the pending decision) carries from the previous session through the
``backtest_state`` table, so a daily run resumes exactly where a backfill would be.
"""

import dagster as dg
import pandas as pd

from quantlab_assets.backtest_engine.core.kpis import KPI_COLUMNS, kpis_of_range
from quantlab_assets.backtest_engine.core.report import backtest_summary_markdown, equity_drawdown_png, kpi_markdown
from quantlab_assets.backtest_engine.core.store import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_STATE,
    BACKTEST_TRADES,
    backtest_strategy,
    with_strategy,
)
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.gates import upstream_complete
from quantlab_assets.common.warehouse import read_strategy_slice, replace_strategy_slice
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.data_curator.core.bars import read_bars
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import (
    add_partition_metadata,
    column_schema,
    detail,
    gate_check_result,
    preview,
    served_image,
    upstream_spec,
)
from quantlab_assets.partitions import (
    PREVIOUS_AND_SAME_SESSION,
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
)
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import strategy_key, targets_key, universe_of
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import TARGETS

GROUP = "backtest_engine"
FIRST_SESSION = "1990-01-01"


def backtest_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "backtest")


def kpis_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "backtest_kpis")


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
        raise dg.Failure(
            description=f"{name}: no backtest state for {prev.date()} but history up to {last}: "
            f"materialize the backtest from {shift_sessions(last, 1).date()} first"
        )
    return None


def build_backtest_assets(spec: StrategySpec) -> dg.AssetsDefinition:
    name = spec.name
    bt_key, kpi_key = backtest_key(name), kpis_key(name)

    @dg.multi_asset(
        name=f"{name}__backtest",
        specs=[
            dg.AssetSpec(
                bt_key,
                group_name=GROUP,
                kinds={"duckdb", "numpy"},
                skippable=True,
                deps=[
                    dg.AssetDep(targets_key(name), partition_mapping=PREVIOUS_AND_SAME_SESSION),
                    ohlcv,
                    dg.AssetDep(bt_key, partition_mapping=PREVIOUS_SESSION),
                ],
                description=f"Simulated book of '{name}': daily equity, positions, trades and the "
                "state the next session resumes from. Trades the targets' rebalance rows.",
                owners=["team:backtest_engine"],
            ),
            dg.AssetSpec(
                kpi_key,
                group_name=GROUP,
                kinds={"duckdb"},
                deps=[bt_key],
                skippable=True,
                description=f"KPIs of '{name}' as of each date, since start and trailing 252 sessions.",
                owners=["team:backtest_engine"],
            ),
        ],
        check_specs=[upstream_spec(bt_key), upstream_spec(kpi_key)],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Either asset alone can be selected: the backtest without its KPIs, or the KPIs
        # recomputed from the stored equity.
        can_subset=True,
    )
    def _backtest(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        market_data: MarketDataResource,
        artifacts: ArtifactsResource,
    ):
        start, end = partition_dates(context)
        selected = context.selected_asset_keys
        run_dir = artifacts.run_dir(context.run.run_id)
        out = None
        if bt_key in selected:
            universe = universe_of(market_data.registry(), spec)
            with warehouse.get_connection() as con:
                state = load_state(con, name, start)
                bars = read_bars(con, shift_sessions(start, -1), end, symbols=universe)
                targets = read_strategy_slice(con, TARGETS, name, start, end)
                gate = upstream_complete(
                    {
                        "targets": (targets["date"].unique(), targets_key(name).to_user_string()),
                        "ohlcv": (bars["date"][bars["date"] >= pd.Timestamp(start)].unique(), "ohlcv"),
                    },
                    start,
                    end,
                )
                if gate.passed:
                    decisions = targets[targets["rebalance"]][["date", "symbol", "weight"]]
                    out, equity = backtest_strategy(bars, decisions, start, end, spec.costs, spec.capital, state)
                    replace_strategy_slice(con, BACKTEST_EQUITY, equity, name, start, end)
                    replace_strategy_slice(con, BACKTEST_POSITIONS, out.positions, name, start, end)
                    replace_strategy_slice(con, BACKTEST_TRADES, out.trades, name, start, end)
                    replace_strategy_slice(con, BACKTEST_STATE, out.states, name, start, end)
            if gate.passed:
                assert out is not None  # the backtest ran above when the gate passed
                _append_trades_csv(run_dir / "trades.csv", with_strategy(out.trades, name), name)
                add_partition_metadata(
                    context,
                    equity["date"],
                    asset_key=bt_key,
                    per_day={
                        r.date: {"equity": float(r.equity), "ret": float(r.ret), "turnover": float(r.turnover)}
                        for r in equity.itertuples()
                    },
                )
                yield dg.MaterializeResult(
                    asset_key=bt_key,
                    metadata={
                        "dagster/row_count": len(equity),
                        "dagster/column_schema": column_schema(BACKTEST_EQUITY),
                        "trades": len(out.trades),
                        "skipped_orders": len(out.skipped),
                        "final_equity": float(equity["equity"].iloc[-1]) if len(equity) else float("nan"),
                        "trades_preview": preview(out.trades.tail(10)),
                    },
                )
            else:
                add_partition_metadata(context, [], asset_key=bt_key, written=False)
                yield dg.MaterializeResult(
                    asset_key=bt_key, metadata={"dagster/row_count": 0, "not_written": gate.description}
                )
            yield gate_check_result(gate, bt_key)
            if not gate.passed:
                return  # the KPIs would describe a backtest that did not run
        if kpi_key not in selected:
            return
        with warehouse.get_connection() as con:
            # KPIs as of each date are computed over the whole stored history, then the run's
            # dates are written: identical whether the history came in one run or many.
            history = read_strategy_slice(con, BACKTEST_EQUITY, name, FIRST_SESSION, end)
            in_range = history["date"][history["date"] >= pd.Timestamp(start)].unique()
            gate = upstream_complete({"backtest": (in_range, bt_key.to_user_string())}, start, end)
            if gate.passed:
                table = kpis_of_range(history, start, end)
                replace_strategy_slice(con, BACKTEST_KPIS, table, name, start, end)
                trades = out.trades if out is not None else read_strategy_slice(con, BACKTEST_TRADES, name, start, end)
        if not gate.passed:
            add_partition_metadata(context, [], asset_key=kpi_key, written=False)
            yield dg.MaterializeResult(
                asset_key=kpi_key, metadata={"dagster/row_count": 0, "not_written": gate.description}
            )
            yield gate_check_result(gate, kpi_key)
            return
        skipped = out.skipped if out is not None else pd.DataFrame()
        last = table[table["date"] == table["date"].max()] if len(table) else table
        png = (
            equity_drawdown_png(history, history.set_index("date")["benchmark_ret"], f"{name}")
            if len(history) > 1
            else b""
        )
        chart = f"backtest_{name}.png"
        if png:
            (run_dir / "reports" / chart).write_bytes(png)
        image = served_image(context, png, f"backtest_{name}")
        report = (
            backtest_summary_markdown(
                name, start, end, last, trades, skipped, spec.costs.fee_bps, spec.costs.slippage_bps, chart
            )
            if len(last)
            else f"## {name}\n\nno session in {start}..{end}\n"
        )
        artifacts.write_section(context.run.run_id, "backtest_summary.md", name, report, title="Backtest summary")
        since = last[last["scope"] == "since_start"]
        headline = {k: float(since[k].iloc[0]) for k in KPI_COLUMNS if len(since) and pd.notna(since[k].iloc[0])}
        # Each partition: its own KPIs; the latest one also the chart and the formatted table.
        per_day: dict[object, dict[str, dg.RawMetadataValue]] = {
            day: {
                k: float(v)
                for k, v in rows[rows["scope"] == "since_start"].iloc[0][list(KPI_COLUMNS)].items()
                if pd.notna(v)
            }
            for day, rows in table.groupby("date")
        }
        if len(last):
            day = last["date"].iloc[0]
            per_day[day] = {
                **per_day.get(day, {}),
                "kpi_table": dg.MetadataValue.md(kpi_markdown(last)),
                "equity_and_drawdown": dg.MetadataValue.md(
                    f"![equity and drawdown]({image})"
                    if image
                    else f"see `reports/{chart}` in `artifacts/runs/{context.run.run_id}/`"
                    if png
                    else "_not enough sessions to plot_"
                ),
            }
        add_partition_metadata(
            context,
            table["date"].unique(),
            asset_key=kpi_key,
            per_day=per_day,
            latest={
                "run_summary": detail(
                    context, report.replace(f"]({chart})", f"]({image})") if image else report, "backtest_summary.md"
                )
            },
        )
        yield dg.MaterializeResult(
            asset_key=kpi_key,
            metadata={
                "dagster/row_count": len(table),
                "dagster/column_schema": column_schema(BACKTEST_KPIS),
                **headline,
            },
        )
        yield gate_check_result(gate, kpi_key)

    return _backtest


def _append_trades_csv(path, trades: pd.DataFrame, name: str) -> None:
    """``trades.csv`` of the run holds every strategy's fills; a strategy's rows are replaced."""
    if path.exists():
        existing = pd.read_csv(path)
        trades = pd.concat([existing[existing["strategy"] != name], trades], ignore_index=True)
    trades.to_csv(path, index=False)
