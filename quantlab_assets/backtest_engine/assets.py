"""The backtest engine's asset factory: ``<strategy>/<strategy>_backtest`` and ``<strategy>/<strategy>_backtest_kpis``.

State (positions, cash, the pending decision) carries from the previous session through the
``backtest_state`` table, so a daily run resumes exactly where a backfill would be. Each asset is
written, audited and published (``common.publish``): the core computes the partition's candidate
rows and their gate (``core/step.py``), and only rows that pass replace the stored slice.
"""

import dataclasses
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from quantlab_assets.backtest_engine.checks import backtest_check_specs
from quantlab_assets.backtest_engine.core.csv_artifact import merge_csv
from quantlab_assets.backtest_engine.core.kpis import first_invested, kpis_of_range
from quantlab_assets.backtest_engine.core.report import headline_text, kpi_markdown
from quantlab_assets.backtest_engine.core.step import (
    BacktestInputs,
    BacktestPartition,
    BacktestReport,
    backtest_partition,
    backtest_report,
    held_outside_registry,
    kpis_partition,
    latest_kpis,
    since_start_by_date,
    since_start_figures,
    with_candidate,
)
from quantlab_assets.backtest_engine.core.store import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    read_equity_history,
    read_invested_before,
    read_resume_state,
    read_spec_at,
    read_trades,
    with_strategy,
)

# Re-exported (``X as X``): the tearsheets import FIRST_SESSION from here.
from quantlab_assets.backtest_engine.core.store import FIRST_SESSION as FIRST_SESSION
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.publish import Published, audit_and_publish
from quantlab_assets.common.warehouse import read_strategy_slice
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.data_curator.core.bars import read_bars
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.metadata import column_schema, detail, preview, published_results, served_image
from quantlab_assets.partitions import (
    PREVIOUS_AND_SAME_SESSION,
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
)
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import strategy_key, targets_key
from quantlab_assets.strategy_lab.core.construct import universe_of
from quantlab_assets.strategy_lab.core.spec import EQUAL_WEIGHT, StrategySpec
from quantlab_assets.strategy_lab.core.targets import TARGETS

GROUP = "backtest_engine"


def backtest_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "backtest")


def kpis_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "backtest_kpis")


def _asset_specs(name: str) -> list[dg.AssetSpec]:
    bt_key = backtest_key(name)
    return [
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
            kpis_key(name),
            group_name=GROUP,
            kinds={"duckdb"},
            deps=[bt_key],
            skippable=True,
            description=f"KPIs of '{name}' as of each date, since start and trailing 252 sessions.",
            owners=["team:backtest_engine"],
        ),
    ]


def build_backtest_assets(spec: StrategySpec) -> dg.AssetsDefinition:
    """The strategy's backtest and KPIs: one step, each asset written, audited and published on
    its own (the KPIs only over a published backtest), the gate reported as its checks."""
    name = spec.name
    bt_key, kpi_key = backtest_key(name), kpis_key(name)

    @dg.multi_asset(
        name=f"{name}__backtest",
        specs=_asset_specs(name),
        check_specs=backtest_check_specs(bt_key, kpi_key),
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
        part = None
        if bt_key in context.selected_asset_keys:
            registry = market_data.registry()
            universe = universe_of(registry, spec)
            part, outcome = _backtest_partition(context, warehouse, spec, (universe, registry.tickers), start, end)
            for line in held_outside_registry(part.positions, registry.tickers):  # flagged, not hidden
                context.log.warning(f"{name}: {line}")
            yield from published_results(context, outcome, bt_key, _backtest_metadata(part), **_backtest_days(part))
            if not outcome.published:
                return  # the KPIs would describe a backtest that was not published
            trades_csv = artifacts.run_dir(context.run.run_id) / "trades.csv"
            merge_csv(trades_csv, with_strategy(part.trades, name), "strategy", name)
        if kpi_key in context.selected_asset_keys:
            yield from _kpis(context, warehouse, artifacts, spec, start, end, part)

    return _backtest


def _backtest_partition(
    context, warehouse: WarehouseResource, spec: StrategySpec, symbols: tuple, start, end
) -> tuple[BacktestPartition, Published]:
    """Read the partition's inputs, compute and audit its rows, publish them if they pass.
    ``symbols``: (the strategy's universe, the registry's tickers)."""
    name, (universe, registered) = spec.name, symbols
    named = spec.benchmark != EQUAL_WEIGHT  # a registry symbol: its own bars, not the universe's
    with warehouse.get_connection() as con:
        state, last_state = read_resume_state(con, name, start)
        first_bar = shift_sessions(start, -1)
        inputs = BacktestInputs(
            bars=read_bars(con, first_bar, end, symbols=universe),
            benchmark_bars=read_bars(con, first_bar, end, symbols=[spec.benchmark]) if named else None,
            benchmark_registered=not named or spec.benchmark in set(registered),
            targets=read_strategy_slice(con, TARGETS, name, start, end),
            state=state,
            last_state_date=last_state,
            targets_asset=targets_key(name).to_user_string(),
            backtest_asset=backtest_key(name).to_user_string(),
            state_spec=read_spec_at(con, name, last_state) if state is not None else None,
            invested_before=read_invested_before(con, name, start),
            previous_targets=_previous_targets(con, spec, start),
        )
        part = backtest_partition(inputs, spec, start, end)
        outcome = audit_and_publish(
            con, part.slices(name), part.gate, start, end, contract=f"backtest/{name}", run_id=context.run.run_id
        )
        if outcome.published:
            history = with_candidate(read_equity_history(con, name, end), part.equity, start)
            part = dataclasses.replace(part, headline=_headline(history, start, end))
    return part, outcome


def _headline(history: pd.DataFrame, start, end) -> dict:
    """The since-start figures of the run's last date, for the backtest's own page (they are the
    KPIs asset's rows, computed by the same function over the same history)."""
    last = latest_kpis(kpis_of_range(history, start, end))
    first = first_invested(history)
    return {
        "headline": headline_text(last, first),
        **{k: round(v, 6) for k, v in since_start_figures(last).items()},
    }


def _previous_targets(con, spec: StrategySpec, start):
    """The targets of the two sessions before ``start``, read only for holding 'until_change'."""
    if spec.holding.kind != "until_change":
        return None
    return read_strategy_slice(con, TARGETS, spec.name, shift_sessions(start, -2), shift_sessions(start, -1))


def _backtest_metadata(part: BacktestPartition) -> dict:
    equity = part.equity
    return {
        "dagster/row_count": len(equity),
        "dagster/column_schema": column_schema(BACKTEST_EQUITY),
        "trades": len(part.trades),
        "skipped_orders": len(part.skipped),
        "final_equity": round(float(equity["equity"].iloc[-1]), 2) if len(equity) else float("nan"),
        **part.headline,
        "trades_preview": preview(part.trades.tail(10)),
    }


def _backtest_days(part: BacktestPartition) -> dict:
    """Each partition's own equity, return and turnover."""
    per_day = {
        r.date: {
            "equity": round(float(r.equity), 2),
            "ret": round(float(r.ret), 6),
            "turnover": round(float(r.turnover), 6),
        }
        for r in part.equity.itertuples()
    }
    return {"dates": part.equity["date"], "per_day": per_day}


def _kpis(
    context,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    spec: StrategySpec,
    start,
    end,
    part: BacktestPartition | None,
) -> Iterator:
    """The KPIs over the whole equity history: the stored one, with this step's published
    candidate in place of [start, end] when the backtest ran in the same step."""
    name, kpi_key = spec.name, kpis_key(spec.name)
    with warehouse.get_connection() as con:
        history = read_equity_history(con, name, end)
        if part is not None:
            history = with_candidate(history, part.equity, start)
        kpis = kpis_partition(history, start, end, backtest_asset=backtest_key(name).to_user_string())
        outcome = audit_and_publish(
            con, kpis.slices(name), kpis.gate, start, end, contract=f"backtest_kpis/{name}", run_id=context.run.run_id
        )
        trades = part.trades if part is not None else read_trades(con, name, start, end)
    if not outcome.published:
        yield from published_results(context, outcome, kpi_key, {})
        return
    skipped = part.skipped if part is not None else pd.DataFrame()
    report = backtest_report(spec, history, kpis.table, trades, skipped, start, end)
    image = _write_report(context, artifacts, name, report)
    yield from published_results(
        context,
        outcome,
        kpi_key,
        _kpi_metadata(kpis.table, history),
        **_kpi_days(context, kpis.table, report, image),
    )


def _kpi_metadata(table: pd.DataFrame, history: pd.DataFrame) -> dict:
    """Row count, schema, the last date's since-start figures and the session they count from."""
    first = first_invested(history)
    if first is None and len(history):
        since = (
            f"EMPTY BOOK: held nothing from {pd.Timestamp(history['date'].min()).date()} to "
            f"{pd.Timestamp(history['date'].max()).date()}; the targets' warnings say why "
            "(reports/strategy_summary.md)"
        )
    else:
        since = "no session yet" if first is None else f"{first.date()} (first invested session)"
    return {
        "dagster/row_count": len(table),
        "dagster/column_schema": column_schema(BACKTEST_KPIS),
        "since_start_from": since,
        **since_start_figures(latest_kpis(table)),
    }


def _write_report(context, artifacts: ArtifactsResource, name: str, report: BacktestReport) -> str | None:
    """The chart and the strategy's section of ``backtest_summary.md`` in the run's folder; returns
    the URL the webserver serves the chart from (None: not served)."""
    run_id = context.run.run_id
    if report.png:
        artifacts.write_image(run_id, report.chart, report.png)
    artifacts.write_section(run_id, "backtest_summary.md", name, report.markdown, title="Backtest summary")
    return served_image(context, report.png, f"backtest_{name}")


def _kpi_days(context, table: pd.DataFrame, report: BacktestReport, image: str | None) -> dict:
    """Each partition's own KPIs; the latest one also the chart and the formatted table, and the
    run's summary."""
    per_day: dict[object, dict[str, dg.RawMetadataValue]] = dict(since_start_by_date(table))
    last = latest_kpis(table)
    if len(last):
        day = last["date"].iloc[0]
        chart = (
            f"![equity and drawdown]({image})"
            if image
            else f"see `reports/{report.chart}` in `artifacts/runs/{context.run.run_id}/`"
            if report.png
            else "_not enough sessions to plot_"
        )
        per_day[day] = {
            **per_day.get(day, {}),
            "kpi_table": dg.MetadataValue.md(kpi_markdown(last)),
            "equity_and_drawdown": dg.MetadataValue.md(chart),
        }
    summary = report.markdown.replace(f"]({report.chart})", f"]({image})") if image else report.markdown
    return {
        "dates": table["date"].unique(),
        "per_day": per_day,
        "latest": {"run_summary": detail(context, summary, "backtest_summary.md")},
    }
