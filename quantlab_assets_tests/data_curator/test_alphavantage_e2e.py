"""The ohlcv asset on the real Alpha Vantage client, served by a local HTTP server."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets_tests.support.alphavantage_server import (
    DAILY_INFO,
    ScriptedServer,
    daily_payload,
    reply_json,
)

SECRET = "QL9SECRETKEY7X"
START, END = "2024-03-25", "2024-04-05"
TAGS = {"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END}


@dg.asset(partitions_def=ohlcv.partitions_def, deps=[ohlcv], backfill_policy=dg.BackfillPolicy.single_run())
def probe_downstream(context) -> None:
    """Stands in for features: must not run while the gate fails."""


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def _payload(bars: pd.DataFrame, symbol: str) -> dict:
    rows = bars[bars["symbol"] == symbol]
    return daily_payload(
        symbol,
        {
            d.strftime("%Y-%m-%d"): (f"{o:.4f}", f"{h:.4f}", f"{lo:.4f}", f"{c:.4f}", f"{v:.0f}")
            for d, o, h, lo, c, v in zip(
                rows["date"], rows["open"], rows["high"], rows["low"], rows["close"], rows["volume"]
            )
        },
    )


def _materialize(instance):
    resources = {
        "warehouse": WarehouseResource(),
        "artifacts": ArtifactsResource(),
        # Fast retries for the test; "full" because the range is older than the compact window.
        "market_data": MarketDataResource(requests_per_minute=0, backoff_base_s=0.001, alphavantage_outputsize="full"),
    }
    return dg.materialize(
        [symbols, ohlcv, ohlcv_quality_gate, probe_downstream],
        instance=instance,
        resources=resources,
        tags=TAGS,
        raise_on_error=False,
    )


def test_quota_stops_cleanly_keeps_fetched_then_completes(lab_env, small_universe, server, monkeypatch):
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "alphavantage")
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", server.url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", SECRET)
    bars = SyntheticProvider().fetch(small_universe, START, END).bars
    for symbol in ("AAA", "BBB"):
        server.script(symbol, reply_json(_payload(bars, symbol)))
    server.script("CCC", reply_json({"Information": DAILY_INFO}))
    instance = dg.DagsterInstance.get()

    first = _materialize(instance)
    assert not first.success
    checks = {e.check_name: e for e in first.get_asset_check_evaluations()}
    assert not checks["ingest_success_rate"].passed
    assert "2 of 5 symbols fetched" in checks["ingest_success_rate"].description
    assert "3 symbols remain" in checks["ingest_success_rate"].description
    assert server.calls("DDD") == 0 and server.calls("EEE") == 0  # stopped, not hammered
    started = {e.step_key for e in first.all_events if e.event_type_value == "STEP_START"}
    assert "probe_downstream" not in started
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        kept = con.execute("SELECT symbol, count(*) FROM ohlcv GROUP BY symbol ORDER BY symbol").fetchall()
        log = con.execute("SELECT symbol, status FROM ohlcv_ingest_log ORDER BY symbol").fetchall()
    assert kept == [("AAA", 9), ("BBB", 9)]
    assert log == [("AAA", "ok"), ("BBB", "ok"), ("CCC", "failed"), ("DDD", "failed"), ("EEE", "failed")]

    # Next day the quota is back: the same range completes, nothing duplicated.
    for symbol in small_universe:
        server.script(symbol, reply_json(_payload(bars, symbol)))
    second = _materialize(instance)
    assert second.success
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        stored = con.execute(
            "SELECT date, symbol, open, high, low, close, volume FROM ohlcv ORDER BY symbol, date"
        ).df()
    expected = bars[["date", "symbol", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False, atol=5e-5, rtol=0)

    # The key is nowhere: not in run storage, the warehouse, the artifacts or the event logs.
    leaks = [p for p in lab_env["DAGSTER_HOME"].parent.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []
    for run in instance.get_runs():
        assert SECRET not in str(run.run_config) and SECRET not in str(run.tags)
        for record in instance.all_logs(run.run_id):
            assert SECRET not in (record.user_message or "")
            assert SECRET not in str(record.dagster_event)
