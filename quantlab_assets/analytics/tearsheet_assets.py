"""Per strategy ``<strategy>/<strategy>_tearsheet`` and the ``strategy_leaderboard`` of all strategies.

Both read what the backtest stored (equity, positions, trades, KPIs, approvals) over the whole
history up to the run's last date and report as of that date: a 10-year backfill builds one
tearsheet, not 2,500. They are trading-day partitioned like the chain (a job spans one
partitions definition), with single-run backfills.
"""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from quantlab_assets.analytics.core.leaderboard import equity_curves_png, leaderboard, leaderboard_markdown
from quantlab_assets.analytics.core.tearsheet import (
    POSITION_FIELDS,
    TRADE_FIELDS,
    build_tearsheet,
    tearsheet_html,
    tearsheet_markdown,
)
from quantlab_assets.backtest_engine.assets import FIRST_SESSION, kpis_key
from quantlab_assets.backtest_engine.core.schema import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_TRADES,
)
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import read_slice, read_strategy_slice
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.metadata import is_backfill, png_md, preview
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.portfolio_supervisor.assets import approvals_key
from quantlab_assets.portfolio_supervisor.core.schema import APPROVALS
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import strategy_key
from quantlab_assets.strategy_lab.core.predictions import add_prediction_quality, stored_prediction_quality
from quantlab_assets.strategy_lab.core.spec import StrategySpec

GROUP = "backtest_engine"
HEADLINE = ("cagr", "sharpe_ratio", "max_drawdown", "alpha", "beta", "information_ratio", "var_95", "cvar_95")


def tearsheet_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "tearsheet")


def report_metadata(context: dg.AssetExecutionContext, light: dict, heavy: dict) -> dict:
    """Short runs carry the charts and tables on every partition; a backfill carries them on its
    last partition only (Dagster copies run metadata onto every partition of a single-run backfill)."""
    if not is_backfill(context):
        return {**light, **heavy}
    context.add_asset_metadata(heavy, partition_key=context.partition_keys[-1])
    return light


def benchmark_returns(con, spec: StrategySpec, equity: pd.DataFrame) -> pd.Series:
    """The strategy's benchmark daily returns by date, as the backtest stored them: the spec's
    ``benchmark`` (the equal-weight universe or a registry symbol) under the strategy's execution
    convention, so the tearsheet's relative figures are the backtest KPIs' (docs/strategies.md)."""
    return equity.set_index("date")["benchmark_ret"]


def build_tearsheet_asset(spec: StrategySpec) -> dg.AssetsDefinition:
    name = spec.name

    @dg.asset(
        key=tearsheet_key(name),
        group_name=GROUP,
        kinds={"html", "matplotlib"},
        deps=[kpis_key(name), ohlcv],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        owners=["team:backtest_engine"],
        description=f"Tearsheet of '{name}' as of the run's last date: returns vs {spec.benchmark}, drawdowns, "
        "monthly and yearly returns, rolling Sharpe/volatility/beta, VaR/CVaR, exposure, turnover, "
        "costs and P&L by name; reports/tearsheet_<strategy>.html (self-contained).",
    )
    def _tearsheet(context: dg.AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactsResource):
        _, end = partition_dates(context)
        with warehouse.get_connection() as con:
            equity = read_strategy_slice(con, BACKTEST_EQUITY, name, FIRST_SESSION, end)
            # Only what the tearsheet uses: the whole history is a million rows of each at 500 names.
            positions = read_strategy_slice(con, BACKTEST_POSITIONS, name, FIRST_SESSION, end, columns=POSITION_FIELDS)
            trades = read_strategy_slice(con, BACKTEST_TRADES, name, FIRST_SESSION, end, columns=TRADE_FIELDS)
            bench = benchmark_returns(con, spec, equity) if len(equity) else None
            quality = stored_prediction_quality(con, spec, FIRST_SESSION, end)  # model strategies (docs/models.md)
        if len(equity) < 2:
            return dg.MaterializeResult(
                metadata={
                    "sessions": len(equity),
                    "tearsheet": dg.MetadataValue.md(
                        f"_{name}: {len(equity)} session(s) of backtest up to {end}; a tearsheet needs 2_"
                    ),
                }
            )
        sheet = build_tearsheet(name, equity, positions, trades, bench, spec.benchmark)
        page = _write_tearsheet(artifacts, context.run.run_id, name, sheet)
        return dg.MaterializeResult(metadata={**_tearsheet_metadata(context, name, sheet, page), **quality})

    return _tearsheet


_CHARTS = ("returns", "calendar")


def _write_tearsheet(artifacts: ArtifactsResource, run_id: str, name: str, sheet) -> Path:
    """reports/tearsheet_<s>.html (self-contained), its two PNGs and the run's tearsheets.md section."""
    reports = artifacts.run_dir(run_id) / "reports"
    page = reports / f"tearsheet_{name}.html"
    page.write_text(tearsheet_html(sheet), encoding="utf-8")
    for chart in _CHARTS:
        (reports / f"tearsheet_{name}_{chart}.png").write_bytes(sheet.charts[chart])
    report = tearsheet_markdown(sheet, {c: f"tearsheet_{name}_{c}.png" for c in _CHARTS})
    artifacts.write_section(run_id, "tearsheets.md", name, report, title="Strategy tearsheets")
    return page


def _tearsheet_metadata(context, name: str, sheet, page: Path) -> dict:
    light = {
        "sessions": len(sheet.returns),  # from the first invested session (tearsheet_render.range_note)
        "since": str(sheet.first_invested.date()) if sheet.first_invested is not None else "never invested",
        "html": dg.MetadataValue.path(str(page)),
        **{k: float(sheet.metrics[k]) for k in HEADLINE if k in sheet.metrics},
    }
    heavy = {
        "returns_chart": dg.MetadataValue.md(png_md(context, sheet.charts["returns"], "returns", f"{name}_returns")),
        "calendar_chart": dg.MetadataValue.md(
            png_md(context, sheet.charts["calendar"], "monthly and yearly", f"{name}_calendar")
        ),
        "tearsheet": dg.MetadataValue.md(tearsheet_markdown(sheet)),
    }
    return report_metadata(context, light, heavy)


def build_leaderboard_asset(specs) -> dg.AssetsDefinition:
    names = [s.name for s in specs]

    @dg.asset(
        name="strategy_leaderboard",
        group_name=GROUP,
        kinds={"duckdb", "matplotlib"},
        deps=[*(kpis_key(n) for n in names), *(approvals_key(n) for n in names)],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        owners=["team:backtest_engine"],
    )
    def strategy_leaderboard(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactsResource
    ):
        """Every strategy side by side as of the run's last date: since-start and trailing-252 KPIs,
        yearly returns, the correlation of daily returns, the supervisor's approval rate, and one
        chart of all equity curves (reports/strategy_leaderboard.md)."""
        _, end = partition_dates(context)
        with warehouse.get_connection() as con:
            kpis = read_slice(con, BACKTEST_KPIS, FIRST_SESSION, end)
            equity = read_slice(
                con, BACKTEST_EQUITY, FIRST_SESSION, end, columns=["date", "strategy", "ret", "gross_exposure"]
            )
            approvals = read_slice(con, APPROVALS, FIRST_SESSION, end, columns=["date", "strategy", "status", "gross"])
            quality = {s.name: stored_prediction_quality(con, s, FIRST_SESSION, end) for s in specs}  # models' IC
        # Only today's strategies: rows of a strategy file removed since stay in the tables.
        kpis, equity, approvals = (f[f["strategy"].isin(names)] for f in (kpis, equity, approvals))
        board = leaderboard(kpis, equity, approvals, shift_sessions(end + timedelta(days=1), -1))  # last session
        board = replace(board, table=add_prediction_quality(board.table, quality))
        png = equity_curves_png(board) if len(board.returns) > 1 else b""
        reports = artifacts.run_dir(context.run.run_id) / "reports"
        if png:
            (reports / "strategy_leaderboard.png").write_bytes(png)
        report = leaderboard_markdown(board, "strategy_leaderboard.png" if png else None)
        artifacts.write_report(context.run.run_id, "strategy_leaderboard.md", report)
        light = {"strategies": len(board.table), "dagster/row_count": len(board.table)}
        heavy = {
            "ranking": _ranking_table(board.table),
            "leaderboard": dg.MetadataValue.md(leaderboard_markdown(board, None)),
            "table_preview": preview(board.table, rows=len(board.table) or 1),
        }
        if png:
            heavy["equity_curves"] = dg.MetadataValue.md(png_md(context, png, "equity curves", "leaderboard_equity"))
        return dg.MaterializeResult(metadata=report_metadata(context, light, heavy))

    return strategy_leaderboard


RANKING = (
    ("strategy", "string", "the strategy file's name"),
    ("sharpe_ratio", "float", "since-start Sharpe (from the first invested session)"),
    ("approval_rate", "string", "share of sessions with a book at stake (held or judged) the supervisor approved"),
    ("flag", "string", "REJECTED by the supervisor, or EMPTY BOOK"),
    ("total_return", "string", "since the first invested session"),
    ("max_drawdown", "string", "since the first invested session"),
    ("information_ratio", "float", "vs the strategy's benchmark under the same execution"),
    ("since", "string", "first invested session"),
)


def _ranking_table(table) -> dg.MetadataValue:
    """The leaderboard's ranking as a table the asset page shows inline (markdown over 1,000
    characters hides behind "Show Markdown")."""

    def pct(x) -> str:
        return "n/a" if x != x else f"{x:.2%}"  # NaN != NaN

    def num(x):
        return None if x != x else round(float(x), 2)

    records = [
        dg.TableRecord(
            {
                "strategy": str(r["strategy"]),
                "sharpe_ratio": num(r["sharpe_ratio"]),
                "approval_rate": pct(r["approval_rate"]),
                "flag": str(r["flag"] or ""),
                "total_return": pct(r["total_return"]),
                "max_drawdown": pct(r["max_drawdown"]),
                "information_ratio": num(r["information_ratio"]),
                "since": "never" if r["since"] != r["since"] else str(r["since"].date()),
            }
        )
        for r in table.to_dict("records")
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in RANKING])
    return dg.MetadataValue.table(records=records, schema=schema)
