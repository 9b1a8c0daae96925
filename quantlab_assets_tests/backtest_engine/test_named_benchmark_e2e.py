"""Issue 22 point 2 with a named-symbol benchmark (the spec's ``benchmark: EEE``, a registry symbol
outside the strategy's universe): the backtest stores that symbol's return under the strategy's
execution convention (nothing before the first fill, open to close on it, close to close after),
and every relative figure agrees across backtest_kpis, the backtest's page, the tearsheet and
the leaderboard, and with empyrical on the aligned series. A benchmark without bars for the range
is one line naming the symbol, the range and what to do; nothing is written."""

from __future__ import annotations

import dagster as dg
import duckdb
import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core import tearsheet
from quantlab_assets.analytics.tearsheet_assets import build_leaderboard_asset, build_tearsheet_asset
from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.backtest_engine.core.step import BacktestInputs, backtest_upstream
from quantlab_assets.common import settings, warehouse
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.core.schema import TARGETS
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets_tests.backtest_engine.test_backtest_wap_e2e import _run

UNIVERSE = ["AAA", "BBB", "CCC", "DDD"]
DAYS = trading_days("2024-04-01", "2024-05-31")
FIRST_FILL = DAYS[3]  # decided at the third session's close, filled at the fourth's open
RESOURCES = {"warehouse": WarehouseResource(), "market_data": MarketDataResource(), "artifacts": ArtifactsResource()}


def _spec(name: str, benchmark: str) -> StrategySpec:
    return StrategySpec(
        name=name,
        universe={"include": UNIVERSE},
        signal={"kind": "feature", "feature": "mom_12_1"},
        selection={"kind": "top_k", "k": 4},
        constraints={"min_names": 1, "max_weight": 0.5},
        benchmark=benchmark,
    )


def _seed_targets(db, name: str) -> None:
    """Flat for the first three sessions, then a rebalance every fifth session."""
    rng = np.random.default_rng(7)
    rows = []
    for i, d in enumerate(DAYS):
        decide = i >= 2 and (i - 2) % 5 == 0
        weights = rng.dirichlet(np.ones(4)) if decide else np.zeros(4)
        rows.append(pd.DataFrame({"date": d, "symbol": UNIVERSE, "score": 0.0, "weight": weights, "rebalance": decide}))
    con = warehouse.connect(db)
    try:
        warehouse.replace_strategy_slice(con, TARGETS, pd.concat(rows, ignore_index=True), name, DAYS[0], DAYS[-1])
    finally:
        con.close()


def _materialize(assets, start, end):
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return dg.materialize(
        assets, resources=RESOURCES, instance=dg.DagsterInstance.get(), tags=tags, raise_on_error=False
    )


def _failure(result) -> str:
    return "; ".join(e.message or "" for e in result.all_events if e.event_type_value == "STEP_FAILURE")


def _check_results(result, key: dg.AssetKey, name: str) -> list:
    """The check's evaluations on ``key`` (one per partition of the run)."""
    return [e for e in result.get_asset_check_evaluations() if e.check_name == name and e.asset_key == key]


def _meta(result, key: dg.AssetKey, partition: str) -> dict:
    instance = dg.DagsterInstance.get()
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return record.asset_materialization.metadata


@pytest.fixture
def ingested(lab_env, small_universe):
    assert _run([dg.AssetKey("ohlcv")], "2024-03-28", "2024-05-31").success
    return lab_env


def test_a_named_benchmark_agrees_everywhere_and_with_empyrical(ingested):
    db = ingested["QUANTLAB_DB"]
    spec = _spec("bench_named", "EEE")
    _seed_targets(db, spec.name)
    assets = [build_backtest_assets(spec)]
    # Two runs: the second resumes from the stored state (the benchmark's first return there is
    # close to close from the first run's last close).
    for lo, hi in (("2024-04-01", "2024-04-19"), ("2024-04-22", "2024-05-31")):
        result = _materialize(assets, lo, hi)
        assert result.success, _failure(result)
    last = str(DAYS[-1].date())
    result = _materialize([build_tearsheet_asset(spec), build_leaderboard_asset([spec])], last, last)
    assert result.success, _failure(result)

    with duckdb.connect(str(db), read_only=True) as con:
        equity = con.execute(
            "SELECT date, ret, benchmark_ret FROM backtest_equity WHERE strategy = ? ORDER BY date", [spec.name]
        ).df()
        eee = con.execute("SELECT date, open, close, adj_close FROM ohlcv WHERE symbol = 'EEE' ORDER BY date").df()
        kpis = con.execute(
            "SELECT * FROM backtest_kpis WHERE strategy = ? AND date = ? AND scope = 'since_start'",
            [spec.name, DAYS[-1].date()],
        ).df()
    equity["date"], eee["date"] = pd.to_datetime(equity["date"]), pd.to_datetime(eee["date"])
    r, b = equity.set_index("date")["ret"], equity.set_index("date")["benchmark_ret"]
    px = eee.set_index("date")
    adj_open = px["open"] * px["adj_close"] / px["close"]
    # By hand: nothing before the first fill, open to close on it (bought at the same open as the
    # strategy), then close to close on adjusted closes, across the run boundary too.
    assert b[:FIRST_FILL].iloc[:-1].isna().all() and r[:FIRST_FILL].iloc[:-1].eq(0.0).all()
    assert b[FIRST_FILL] == pytest.approx(px["adj_close"][FIRST_FILL] / adj_open[FIRST_FILL] - 1.0, abs=1e-15)
    boundary = pd.Timestamp("2024-04-22")
    prev = pd.Timestamp("2024-04-19")
    assert b[boundary] == pytest.approx(px["adj_close"][boundary] / px["adj_close"][prev] - 1.0, abs=1e-15)
    close_to_close = (px["adj_close"] / px["adj_close"].shift(1) - 1.0).reindex(b.index)
    np.testing.assert_allclose(b[DAYS[4] :], close_to_close[DAYS[4] :], rtol=0, atol=1e-15)
    # Not the equal-weight universe: the benchmark is EEE's, which the strategy does not hold.
    assert "EEE" not in UNIVERSE

    ra, ba = r[FIRST_FILL:], b[FIRST_FILL:]  # the aligned series: both sides can be invested
    k = kpis.iloc[0]
    ir = ep.excess_sharpe(ra, ba) * np.sqrt(252)
    assert k["information_ratio"] == pytest.approx(ir, rel=1e-12)
    assert k["excess_return"] == pytest.approx(ep.cum_returns_final(ra) - ep.cum_returns_final(ba), abs=1e-14)
    # The tearsheet's relative figures on the stored series are empyrical's on the aligned one.
    figures = tearsheet.metrics(r, b)
    assert figures["information_ratio"] == pytest.approx(k["information_ratio"], rel=1e-12)
    assert figures["beta"] == pytest.approx(ep.beta(ra, ba), rel=1e-12)
    assert figures["alpha"] == pytest.approx(ep.alpha(ra, ba), rel=1e-12)
    assert figures["up_capture"] == pytest.approx(ep.up_capture(ra, ba), rel=1e-12)
    assert figures["down_capture"] == pytest.approx(ep.down_capture(ra, ba), rel=1e-12)
    te = np.std((ra - ba).to_numpy(), ddof=1) * np.sqrt(252)
    assert figures["tracking_error"] == pytest.approx(te, rel=1e-12)
    # ... and the same figures on every page: the tearsheet asset, the backtest's own page, the
    # KPIs asset and the leaderboard's ranking.
    sheet = _meta(result, dg.AssetKey([spec.name, f"{spec.name}_tearsheet"]), last)
    for key in ("information_ratio", "alpha", "beta"):
        assert sheet[key].value == pytest.approx(figures[key], rel=1e-12), key
    page = _meta(result, dg.AssetKey([spec.name, f"{spec.name}_backtest"]), last)
    assert page["information_ratio"].value == round(k["information_ratio"], 6)
    assert page["excess_return"].value == round(k["excess_return"], 6)
    kpi_page = _meta(result, dg.AssetKey([spec.name, f"{spec.name}_backtest_kpis"]), last)
    # The run summary names the benchmark the figures were computed against, not the universe.
    summaries = list(settings.artifacts_root().glob("runs/*/reports/backtest_summary.md"))
    assert summaries and all("Benchmark: EEE." in p.read_text() for p in summaries), summaries
    assert kpi_page["information_ratio"].value == pytest.approx(k["information_ratio"], rel=1e-15)
    board = _meta(result, dg.AssetKey("strategy_leaderboard"), last)["ranking"].value.records
    assert board[0].data["information_ratio"] == round(k["information_ratio"], 2)


def test_a_benchmark_without_bars_is_one_line_and_writes_nothing(ingested):
    db = ingested["QUANTLAB_DB"]
    spec = _spec("bench_missing", "QQQ")  # not in the registry, never ingested
    _seed_targets(db, spec.name)
    result = _materialize([build_backtest_assets(spec)], "2024-04-01", "2024-04-05")
    assert not result.success
    checks = _check_results(result, dg.AssetKey([spec.name, f"{spec.name}_backtest"]), "upstream_complete")
    assert len(checks) == 5 and not any(c.passed for c in checks)
    assert len({c.description for c in checks}) == 1  # the range's one line on each partition
    line = checks[0].description
    assert line.startswith("bench_missing: field 'benchmark': QQQ has no ohlcv bar on 5 of 5 sessions of "), line
    assert "2024-04-01..2024-04-05" in line and "QQQ is not in the symbol registry" in line
    assert "add QQQ to the symbol registry (QUANTLAB_SYMBOLS) and materialize ohlcv for 2024-04-01...2024-04-05" in line
    assert "or set 'benchmark: equal_weight'" in line and line.endswith("nothing was written")
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM backtest_equity WHERE strategy = ?", [spec.name]).fetchone()
    assert stored == (0,)


def test_a_registered_benchmark_missing_some_sessions_names_them():
    """In the registry but not ingested for part of the range: the sessions it lacks, counted."""
    days = trading_days("2024-04-01", "2024-04-12")
    bars = pd.DataFrame({"date": days[:6], "symbol": "SPY", "open": 1.0, "close": 1.0, "adj_close": 1.0})
    inputs = BacktestInputs(bars=bars.assign(symbol="AAA"), targets=pd.DataFrame(), benchmark_bars=bars)
    gate = backtest_upstream(inputs, days[0], days[-1], _spec("s", "SPY"))
    assert not gate.passed
    assert gate.description == (
        "s: field 'benchmark': SPY has no ohlcv bar on 4 of 10 sessions of 2024-04-01..2024-04-12 (first missing "
        "2024-04-09): materialize ohlcv for 2024-04-01...2024-04-12, or set 'benchmark: equal_weight' in the "
        "strategy file; nothing was written"
    )
    # Resuming a strategy already invested: the close before the range is needed too.
    resumed = BacktestInputs(
        bars=bars, targets=pd.DataFrame(), benchmark_bars=bars[bars["date"] >= days[0]], invested_before=True
    )
    gate = backtest_upstream(resumed, days[0], days[5], _spec("s", "SPY"))
    assert (
        not gate.passed and "1 of 7 sessions of 2024-03-28..2024-04-08 (first missing 2024-03-28)" in gate.description
    )
