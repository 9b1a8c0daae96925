"""The chain ohlcv -> features, labels -> targets[strategy] through the real Definitions:
a backfill in one run equals the same days run one partition at a time, table for table.
Runs on the embedded SQLite instance and on Dagster on a real PostgreSQL server (`dagster_storage`)."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.definitions import defs

START, END = "2024-04-01", "2024-04-08"
SYMBOLS = [f"T{i:02d}" for i in range(30)]


@pytest.fixture
def universe30(tmp_path, monkeypatch):
    path = tmp_path / "symbols.yaml"
    sectors = ["Tech", "Energy", "Health", "Utilities"]
    path.write_text(
        "universe: test30\nsymbols:\n"
        + "".join(f"  - {{symbol: {s}, sector: {sectors[i % 4]}}}\n" for i, s in enumerate(SYMBOLS))
    )
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(path))


def _run(instance, selection, start, end=None):
    job = defs.resolve_implicit_global_asset_job_def()
    if end is None:
        return job.execute_in_process(
            instance=instance, partition_key=start, asset_selection=selection, raise_on_error=False
        )
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return job.execute_in_process(instance=instance, tags=tags, asset_selection=selection, raise_on_error=False)


def _chain_keys():
    return list(dg.AssetSelection.assets("ohlcv").downstream().resolve(defs.resolve_asset_graph()))


def _table(db, name, order):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            f"SELECT * EXCLUDE ({'run_id, ingested_at' if name == 'ohlcv' else 'date'}), "
            f"{'' if name == 'ohlcv' else 'date, '}1 AS _ FROM {name} ORDER BY {order}"
        ).df()


def test_backfill_equals_daily_runs(lab_env, dagster_storage, universe30, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.get()
    history = (str(shift_sessions(START, -260).date()), str(shift_sessions(START, -1).date()))
    assert _run(instance, [dg.AssetKey("ohlcv")], *history).success
    seed_db = tmp_path / "seed.duckdb"
    shutil.copy(lab_env["QUANTLAB_DB"], seed_db)

    batch = _run(instance, _chain_keys(), START, END)
    assert batch.success, [e.message for e in batch.all_events if e.event_type_value == "STEP_FAILURE"]
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in batch.get_asset_check_evaluations()}
    for key in [
        ("features", "no_lookahead_leakage"),
        ("features", "incremental_equals_batch"),
        ("features", "history_complete"),
        ("momentum_topk/momentum_topk_targets", "constraint_violations_zero"),
        ("short_term_reversal/short_term_reversal_targets", "constraint_violations_zero"),
        ("labels", "labels_match_prices"),
        ("momentum_topk/momentum_topk_backtest", "accounting_identity"),
        ("short_term_reversal/short_term_reversal_backtest", "no_trade_before_decision"),
        ("low_volatility/low_volatility_backtest_kpis", "kpis_finite"),
    ]:
        assert checks[key].passed, (key, checks[key].description)
    batch_db = tmp_path / "batch.duckdb"
    shutil.copy(lab_env["QUANTLAB_DB"], batch_db)

    # The same days, one partition per run, on a fresh copy of the same history.
    daily_db = tmp_path / "daily.duckdb"
    shutil.copy(seed_db, daily_db)
    monkeypatch.setenv("QUANTLAB_DB", str(daily_db))
    for day in trading_days(START, END):
        assert _run(instance, _chain_keys(), str(day.date())).success

    for name, order in [
        ("features", "symbol, date"),
        ("features_toolbox", "symbol, date"),
        ("targets", "strategy, symbol, date"),
        ("backtest_equity", "strategy, date"),
        ("backtest_positions", "strategy, symbol, date"),
        ("backtest_trades", "strategy, symbol, date"),
        ("backtest_state", "strategy, symbol, date"),
        ("backtest_kpis", "strategy, scope, date"),
    ]:
        pd.testing.assert_frame_equal(_table(batch_db, name, order), _table(daily_db, name, order), check_exact=True)
    # A daily run cannot know a label before its exit bar: NULL, with the date it becomes known.
    daily_labels = _table(daily_db, "labels", "symbol, date")
    assert daily_labels["fwd_ret_1"].isna().all() and daily_labels["exit_date_1"].notna().all()
    # The labels refresh (what the schedule runs over recent partitions) then equals the backfill.
    assert _run(instance, [dg.AssetKey("labels")], START, END).success
    pd.testing.assert_frame_equal(
        _table(batch_db, "labels", "symbol, date"), _table(daily_db, "labels", "symbol, date"), check_exact=True
    )
    assert _table(batch_db, "labels", "symbol, date")["fwd_ret_1"].notna().sum() > 0

    with duckdb.connect(str(batch_db), read_only=True) as con:
        targets = con.execute(
            "SELECT strategy, date, sum(abs(weight)) AS gross, count(*) FILTER (weight <> 0) AS names "
            "FROM targets GROUP BY ALL ORDER BY ALL"
        ).df()
    mom = targets[targets["strategy"] == "momentum_topk"]
    assert (mom["names"] == 10).all() and (mom["gross"] - 1.0).abs().max() < 1e-12
    rev = targets[targets["strategy"] == "short_term_reversal"]
    assert (rev["gross"] <= 1.0 + 1e-12).all() and (rev["names"] > 0).any()
    with duckdb.connect(str(batch_db), read_only=True) as con:
        trades = con.execute("SELECT count(*), min(date - decision_date) FROM backtest_trades").fetchone()
        sessions = con.execute("SELECT strategy, count(*) FROM backtest_equity GROUP BY ALL ORDER BY ALL").fetchall()
    assert trades[0] > 0 and trades[1] >= 1  # fills only after their decision
    n = len(trading_days(START, END))
    assert sessions == [
        ("low_volatility", n),
        ("momentum_topk", n),
        ("short_term_reversal", n),
        ("sma_cross_10_20", n),
        ("trend_sma50", n),
    ]
