"""End to end: the tearsheet, leaderboard and feature_ic assets on a warehouse seeded with stored
backtests, approvals, features and labels; reports in the run's folder, figures in the metadata."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.ic_assets import feature_ic
from quantlab_assets.analytics.tearsheet_assets import build_leaderboard_asset, build_tearsheet_asset
from quantlab_assets.backtest_engine.core.engine import run_backtest
from quantlab_assets.backtest_engine.core.kpis import add_pnl, kpi_table
from quantlab_assets.backtest_engine.core.store import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_TRADES,
    equal_weight_benchmark,
)
from quantlab_assets.common import warehouse
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.feature_store.assets import DEFAULT_PRESET
from quantlab_assets.feature_store.core.labels import LABELS, compute_labels
from quantlab_assets.feature_store.core.store import features_schema
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.portfolio_supervisor.core.store import APPROVALS
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.core.spec import StrategySpec

DAYS = trading_days("2024-01-02", "2024-06-28")
SYMBOLS = [f"S{i:02d}" for i in range(24)] + ["SPY"]


def _bars():
    rng = np.random.default_rng(11)
    rows = []
    for s in SYMBOLS:
        close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.014, len(DAYS))))
        open_ = close * np.exp(rng.normal(0, 0.003, len(DAYS)))
        rows.append(
            pd.DataFrame(
                {
                    "date": DAYS,
                    "symbol": s,
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.005,
                    "low": np.minimum(open_, close) * 0.995,
                    "close": close,
                    "adj_close": close,
                    "volume": 1e6,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _spec(name, benchmark="equal_weight"):
    return StrategySpec(
        name=name,
        signal={"kind": "feature", "feature": "mom_12_1"},
        selection={"kind": "top_k", "k": 10},
        benchmark=benchmark,
    )


@pytest.fixture
def seeded(lab_env):
    bars = _bars()
    rng = np.random.default_rng(2)
    con = warehouse.connect(lab_env["QUANTLAB_DB"])
    try:
        ohlcv = bars.assign(
            dividend=0.0, split_coefficient=1.0, source="test", ingested_at=pd.Timestamp("2024-07-01"), run_id="seed"
        )
        warehouse.replace_slice(con, OHLCV, ohlcv[OHLCV.column_names], DAYS[0], DAYS[-1])
        for name in ("alpha", "beta"):
            targets = pd.concat(
                [
                    pd.DataFrame({"date": DAYS[t], "symbol": SYMBOLS[:24], "weight": rng.dirichlet(np.ones(24))})
                    for t in range(0, len(DAYS), 5)
                ]
            )
            out = run_backtest(bars, targets, DAYS[0], DAYS[-1], fee_bps=1, slippage_bps=5)
            equity = out.equity.assign(
                benchmark_ret=equal_weight_benchmark(bars).reindex(out.equity["date"]).to_numpy()
            )
            for schema, frame in (
                (BACKTEST_EQUITY, equity),
                (BACKTEST_POSITIONS, out.positions),
                (BACKTEST_TRADES, out.trades),
            ):
                warehouse.replace_strategy_slice(con, schema, frame, name, DAYS[0], DAYS[-1])
            table = add_pnl(
                kpi_table(equity[["date", "ret", "turnover"]], equity.set_index("date")["benchmark_ret"]), equity
            )
            warehouse.replace_strategy_slice(con, BACKTEST_KPIS, table, name, DAYS[0], DAYS[-1])
            approvals = pd.DataFrame({c.name: np.nan for c in APPROVALS.columns}, index=range(len(DAYS)))
            approvals = approvals.assign(
                date=DAYS,
                status=np.where(np.arange(len(DAYS)) % 3 == 0, "rejected", "approved"),
                rule_status="approved",
                rebalance=False,
                reasons=None,
                flags=None,
                override_by=None,
                override_reason=None,
            )
            warehouse.replace_strategy_slice(
                con, APPROVALS, approvals.drop(columns="strategy"), name, DAYS[0], DAYS[-1]
            )
        schema = features_schema(DEFAULT_PRESET)
        feats = pd.DataFrame({"date": np.repeat(DAYS, 24), "symbol": np.tile(SYMBOLS[:24], len(DAYS)), "warm": True})
        for f in DEFAULT_PRESET.feature_names:
            feats[f] = rng.normal(size=len(feats))
        warehouse.replace_slice(con, schema, feats, DAYS[0], DAYS[-1])
        warehouse.replace_slice(con, LABELS, compute_labels(bars, DAYS[0], DAYS[-1]), DAYS[0], DAYS[-1])
    finally:
        con.close()
    return lab_env


RESOURCES = {
    "warehouse": WarehouseResource(),
    "artifacts": ArtifactsResource(),
    "feature_store": FeatureStoreResource(),
}


def _materialize(assets, start, end=None):
    instance = dg.DagsterInstance.get()
    if end is None:
        return dg.materialize(assets, partition_key=start, resources=RESOURCES, instance=instance)
    return dg.materialize(
        assets,
        resources=RESOURCES,
        instance=instance,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
    )


def _events(result, key):
    return [
        e.event_specific_data.materialization for e in result.get_asset_materialization_events() if e.asset_key == key
    ]


def test_tearsheet_and_leaderboard_from_stored_backtests(seeded):
    specs = [_spec("alpha"), _spec("beta", benchmark="SPY")]
    assets = [build_tearsheet_asset(s) for s in specs] + [build_leaderboard_asset(specs)]
    result = _materialize(assets, "2024-06-28")
    assert result.success
    reports = seeded["QUANTLAB_ARTIFACTS"] / "runs" / result.run_id / "reports"
    page = (reports / "tearsheet_alpha.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "https://" not in page  # tearsheet_charts.CHARTS
    assert (reports / "tearsheet_beta_returns.png").read_bytes()[:4] == b"\x89PNG"
    meta = _events(result, dg.AssetKey(["alpha", "alpha_tearsheet"]))[0].metadata
    assert "![returns](/logs/" in meta["returns_chart"].value and "Worst 5 drawdowns" in meta["tearsheet"].value
    # The figures start at the first invested session, dated on the page and in the metadata.
    assert meta["since"].value == str(meta["tearsheet"].value.split("first invested session, ")[1][:10])
    assert "Holdings" in meta["tearsheet"].value and "Round trips" in meta["tearsheet"].value
    # The benchmark is the one the spec names (the backtest stores its returns: test_named_benchmark_e2e).
    beta_md = (reports / "tearsheets.md").read_text()
    assert "Benchmark: SPY" in beta_md and "Benchmark: equal_weight" in beta_md
    board = (reports / "strategy_leaderboard.md").read_text()
    assert "| alpha |" in board and "| beta |" in board and (reports / "strategy_leaderboard.png").exists()
    assert "as of 2024-06-28" in board  # the run's last session, not the weekend the Friday partition owns
    lmeta = _events(result, dg.AssetKey("strategy_leaderboard"))[0].metadata
    assert lmeta["strategies"].value == 2 and "equity_curves" in lmeta
    # Issue 22 point 7: the ranking is a table the page shows inline (no "Show Markdown"), in rank
    # order, the approval rate and flag beside the Sharpe.
    ranking = lmeta["ranking"].value
    assert [c.name for c in ranking.schema.columns][:4] == ["strategy", "sharpe_ratio", "approval_rate", "flag"]
    rows = [r.data for r in ranking.records]
    assert sorted(r["strategy"] for r in rows) == ["alpha", "beta"]
    sharpes = [r["sharpe_ratio"] for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)
    assert all(r["approval_rate"].endswith("%") for r in rows)


def test_feature_ic_backfill_reports_once_with_detail_on_the_last_partition(seeded):
    end = "2024-06-28"
    start = str(shift_sessions(end, -9).date())
    result = _materialize([feature_ic], start, end)
    assert result.success
    reports = seeded["QUANTLAB_ARTIFACTS"] / "runs" / result.run_id / "reports"
    md = (reports / "feature_ic.md").read_text()
    assert "Feature IC as of 2024-06-28" in md and (reports / "feature_ic_decay.png").exists()
    summary = pd.read_csv(reports / "feature_ic.csv")
    assert set(summary["horizon"]) == {1, 5, 20} and summary["feature"].nunique() == len(DEFAULT_PRESET.feature_names)
    events = _events(result, dg.AssetKey("feature_ic"))
    with_detail = [e.partition for e in events if "ranked" in e.metadata]
    assert with_detail == [end] and len(events) == len(pd.bdate_range(start, end))  # weekday partitions
