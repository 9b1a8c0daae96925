"""Write-audit-publish of the backtest through the real Definitions: a partition whose candidate
rows break a blocking rule leaves every stored backtest table bit for bit as it was, records the
refusal in ``audit_rejects``, fails the check naming the dates, and runs neither the KPIs nor the
supervision on it."""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core import step
from quantlab_assets.backtest_engine.core.schema import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_STATE,
    BACKTEST_TRADES,
)
from quantlab_assets.common import warehouse
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.publish import read_audit_rejects
from quantlab_assets.definitions import defs
from quantlab_assets.strategy_lab.core.schema import TARGETS

STRATEGY, OTHER = "momentum_topk", "low_volatility"
TABLES = (BACKTEST_EQUITY, BACKTEST_POSITIONS, BACKTEST_TRADES, BACKTEST_STATE, BACKTEST_KPIS)
BAD_DAY = pd.Timestamp("2024-04-04")


def _key(name: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([name, f"{name}_{stage}"])


def _run(selection, start, end):
    job = defs.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=selection, raise_on_error=False
    )


def _seed_targets(db, symbols):
    """Targets as the strategy steps store them: a rebalance every session, so every day trades."""
    rng = np.random.default_rng(3)
    days = trading_days("2024-04-01", "2024-04-12")
    con = warehouse.connect(db)
    try:
        for name in (STRATEGY, OTHER):
            rows = pd.concat(
                [
                    pd.DataFrame(
                        {
                            "date": d,
                            "symbol": symbols,
                            "score": 0.0,
                            "weight": rng.dirichlet(np.ones(5)),
                            "rebalance": True,
                        }
                    )
                    for d in days
                ],
                ignore_index=True,
            )
            warehouse.replace_strategy_slice(con, TARGETS, rows, name, days[0], days[-1])
    finally:
        con.close()


def _snapshot(db) -> dict:
    """(row count, content hash) of every backtest table, and each strategy's row count."""
    with duckdb.connect(str(db), read_only=True) as con:
        out = {}
        for schema in TABLES:
            out[schema.name] = warehouse.table_checksum(con, schema.name, schema.column_names)
            for name in (STRATEGY, OTHER):
                sql = f'SELECT count(*) FROM "{schema.name}" WHERE strategy = ?'
                out[(schema.name, name)] = con.execute(sql, [name]).fetchall()[0][0]
        return out


@pytest.fixture
def stored_backtests(lab_env, small_universe):
    """Two strategies' backtests and KPIs published for 2024-04-01..05 over synthetic ohlcv."""
    assert _run([dg.AssetKey("ohlcv")], "2024-03-28", "2024-04-12").success
    _seed_targets(lab_env["QUANTLAB_DB"], small_universe)
    keys = [_key(n, s) for n in (STRATEGY, OTHER) for s in ("backtest", "backtest_kpis")]
    result = _run(keys, "2024-04-01", "2024-04-05")
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    before = _snapshot(lab_env["QUANTLAB_DB"])
    assert before[("backtest_equity", STRATEGY)] == 5 and before[("backtest_kpis", OTHER)] == 10
    assert before[("backtest_trades", STRATEGY)] > 0
    # Through the artifacts resource: the run's trades.csv holds both strategies' published fills
    # (merged, one strategy's rows each), and each strategy's chart and report section.
    folder = lab_env["QUANTLAB_ARTIFACTS"] / "runs" / result.run_id
    fills = pd.read_csv(folder / "trades.csv")["strategy"].value_counts().to_dict()
    assert fills == {n: before[("backtest_trades", n)] for n in (STRATEGY, OTHER)}
    assert (folder / "reports" / f"backtest_{STRATEGY}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (folder / "reports" / "backtest_summary.md").read_text()
    assert f"<!-- section:{STRATEGY} -->" in summary and f"<!-- section:{OTHER} -->" in summary
    # The KPIs alone, recomputed from the stored equity, equal those computed beside the backtest.
    assert _run([_key(STRATEGY, "backtest_kpis")], "2024-04-01", "2024-04-05").success
    assert _snapshot(lab_env["QUANTLAB_DB"]) == before
    return before


@pytest.mark.parametrize(
    ("fault", "rule", "day"),
    [
        ("equity", "accounting_identity", "2024-04-04"),
        # 2024-04-04's fills re-dated to the close that decided them, 2024-04-03.
        ("early_fill", "no_trade_before_decision", "2024-04-03"),
    ],
)
def test_a_refused_backtest_keeps_every_stored_row(lab_env, stored_backtests, monkeypatch, fault, rule, day):
    real = step.backtest_strategy

    def broken(*args, **kwargs):
        out, equity = real(*args, **kwargs)
        if fault == "equity":  # a book whose equity is not its cash plus its positions on one day
            bumped = equity["equity"].where(equity["date"] != BAD_DAY, equity["equity"] + 1e4)
            return out, equity.assign(equity=bumped)
        trades = out.trades
        early = trades["date"] == BAD_DAY  # that day's fills dated on their decision's close
        return dataclasses.replace(
            out, trades=trades.assign(date=trades["date"].where(~early, trades["decision_date"]))
        ), equity

    monkeypatch.setattr(step, "backtest_strategy", broken)
    selection = [_key(STRATEGY, s) for s in ("backtest", "backtest_kpis", "approvals", "approved_targets")]
    result = _run(selection, "2024-04-03", "2024-04-09")  # two stored days, then new ones
    assert not result.success

    # The stored rows, this strategy's and the other's, bit for bit.
    assert _snapshot(lab_env["QUANTLAB_DB"]) == stored_backtests

    # The refusal: run id, rule, the offending rows naming the day.
    con = warehouse.connect(lab_env["QUANTLAB_DB"])
    try:
        rejects = read_audit_rejects(con, result.run_id)
    finally:
        con.close()
    assert rejects[["contract", "rule"]].values.tolist() == [[f"backtest/{STRATEGY}", rule]]
    offending = json.loads(rejects["offending"].iloc[0])
    assert offending and {row["date"][:10] for row in offending} == {day}
    assert rejects["candidate_rows"].iloc[0] > 0

    # The check failed naming the date; the other rules of the partition passed.
    checks = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = checks[(_key(STRATEGY, "backtest"), rule)]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert f"first {day}" in failed.description and day in failed.metadata["offending_rows"].value
    assert checks[(_key(STRATEGY, "backtest"), "upstream_complete")].passed
    # Neither the KPIs nor the supervision ran on a backtest that was not published.
    assert not any(k[0] != _key(STRATEGY, "backtest") for k in checks), sorted(checks)
    materialized = {
        (m.asset_key, m.partition): m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert {k for k, _ in materialized} == {_key(STRATEGY, "backtest")}
    for day in ("2024-04-03", "2024-04-08"):
        meta = materialized[(_key(STRATEGY, "backtest"), day)]
        assert meta["dagster/row_count"].value == 0 and meta["session"].value.startswith("not written")
        assert rule in meta["not_written"].value and "the stored rows were kept" in meta["not_written"].value
    # Nothing of the refused book reaches the run's trades.csv.
    assert not (lab_env["QUANTLAB_ARTIFACTS"] / "runs" / result.run_id / "trades.csv").exists()
