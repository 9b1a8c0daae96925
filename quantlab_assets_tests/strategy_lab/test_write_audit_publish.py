"""Write, audit, publish through the real Definitions: targets whose audit fails are never published.

A good week of targets is stored for two strategies; then the core emits one NaN weight for one
strategy's week. The stored targets (both strategies) and the backtest stay bit for bit, the
refusal is in ``audit_rejects`` naming the run, the rule and the row, the blocking check names
the symbol and date, the backtest downstream does not run, and every partition says "not written".
"""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.schema import BACKTEST_EQUITY
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.publish import read_audit_rejects
from quantlab_assets.common.warehouse import connect, table_checksum
from quantlab_assets.definitions import defs
from quantlab_assets.strategy_lab.core import step
from quantlab_assets.strategy_lab.core.schema import TARGETS

STRATEGY, OTHER = "momentum_topk", "short_term_reversal"
START, END = "2024-04-01", "2024-04-05"
BAD_SYMBOL, BAD_DAY = "CCC", "2024-04-03"


def _key(name: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey([name, f"{name}_{stage}"])


def _run(instance, keys, start, end):
    job = defs.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return job.execute_in_process(instance=instance, tags=tags, asset_selection=keys, raise_on_error=False)


def _state(db) -> dict:
    """Row count and content hash of the stored targets and backtest, and each strategy's rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(con.execute("SELECT strategy, count(*) FROM targets GROUP BY strategy").fetchall())
        return {
            "targets": table_checksum(con, TARGETS.name, TARGETS.column_names),
            "backtest_equity": table_checksum(con, BACKTEST_EQUITY.name, BACKTEST_EQUITY.column_names),
            "per_strategy": counts,
        }


def test_a_failed_audit_keeps_the_stored_targets_and_stops_the_backtest(lab_env, small_universe, monkeypatch):
    instance = dg.DagsterInstance.get()
    history = (str(shift_sessions(START, -260).date()), str(shift_sessions(START, -1).date()))
    assert _run(instance, [dg.AssetKey("ohlcv")], *history).success
    inputs = [dg.AssetKey("ohlcv"), dg.AssetKey("features"), dg.AssetKey("labels")]
    good = [_key(STRATEGY, "targets"), _key(OTHER, "targets"), _key(STRATEGY, "backtest")]
    assert _run(instance, inputs + good, START, END).success
    before = _state(lab_env["QUANTLAB_DB"])
    assert before["per_strategy"] == {STRATEGY: 25, OTHER: 25}  # 5 sessions x 5 names each

    real = step.compute_targets

    def one_nan_weight(*args, **kwargs):
        result = real(*args, **kwargs)
        t = result.targets
        result.targets = t.assign(
            weight=t["weight"].mask((t["symbol"] == BAD_SYMBOL) & (t["date"] == pd.Timestamp(BAD_DAY)), np.nan)
        )
        return result

    monkeypatch.setattr(step, "compute_targets", one_nan_weight)
    result = _run(instance, [_key(STRATEGY, "targets"), _key(STRATEGY, "backtest")], START, END)
    assert not result.success

    # Stored rows bit for bit: this strategy's, the other strategy's and the backtest's.
    assert _state(lab_env["QUANTLAB_DB"]) == before

    # The blocking check names the rule, the symbol and the date; the other rules passed.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = checks["weights_finite"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description == f"1 non-finite weights, e.g. {BAD_SYMBOL} {BAD_DAY}"
    errors = {name for name, e in checks.items() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert errors == {"weights_finite"}
    # Issue 22 point 4: five names under momentum_topk's min_names 8 hold nothing, and a warning says so.
    empty = checks["book_not_empty"]
    assert not empty.passed and empty.severity == dg.AssetCheckSeverity.WARN
    assert empty.description.startswith("EMPTY BOOK: held nothing on any of 5 session(s)"), empty.description

    # The refusal is recorded with the run, the contract, the rule and the offending row.
    with duckdb.connect(str(lab_env["QUANTLAB_DB"])) as con:  # the reader ensures its table: read-write
        rejects = read_audit_rejects(con, result.run_id)
    assert len(rejects) == 1, rejects
    row = rejects.iloc[0]
    assert (row["contract"], row["rule"], row["candidate_rows"]) == (f"targets/{STRATEGY}", "weights_finite", 25)
    # The Friday partition's window runs to Sunday (partitions.partition_dates).
    assert (str(row["start_date"].date()), str(row["end_date"].date())) == (START, "2024-04-07")
    (offending,) = json.loads(row["offending"])
    assert offending["symbol"] == BAD_SYMBOL and offending["date"].startswith(BAD_DAY)
    assert offending["strategy"] == STRATEGY and offending["weight"] == "nan"  # JSON has no NaN: kept as text

    # The backtest downstream never ran.
    backtest = _key(STRATEGY, "backtest")
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key == backtest]
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {defs.get_assets_def(_key(STRATEGY, "targets")).op.name}  # the backtest was selected too

    # Every partition of the run says it was not written.
    metas = {
        e.materialization.partition: e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == _key(STRATEGY, "targets")
    }
    assert sorted(metas) == ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04", "2024-04-05"]
    for meta in metas.values():
        assert meta["dagster/row_count"].value == 0
        assert meta["session"].value.startswith("not written: the audit refused the new rows")
        assert "weights_finite" in meta["not_written"].value


def test_missing_features_are_refused_and_recorded_naming_what_to_materialize(lab_env, small_universe):
    instance = dg.DagsterInstance.get()
    connect(lab_env["QUANTLAB_DB"]).close()  # the warehouse exists (only an ingest creates it); no features yet
    result = _run(instance, [_key(STRATEGY, "targets")], START, END)
    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    # One verdict per partition (issue 22 point 1): upstream_complete failed on each of the five.
    failed = [e for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR and not e.passed]
    assert sorted(e.partition for e in failed) == ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04", "2024-04-05"]
    for upstream in failed:
        assert upstream.check_name == "upstream_complete" and "materialize features first" in upstream.description
    # The rules saw no rows: warnings saying so, none reported as passed.
    others = [e for e in evaluations if e.check_name != "upstream_complete"]
    assert others and all(not e.passed and e.severity == dg.AssetCheckSeverity.WARN for e in others)
    assert {e.description for e in others} == {"not evaluated: upstream_complete failed, nothing was computed"}
    with duckdb.connect(str(lab_env["QUANTLAB_DB"])) as con:
        rejects = read_audit_rejects(con, result.run_id)
        assert table_checksum(con, TARGETS.name, TARGETS.column_names) == (0, 0)
    assert rejects[["rule", "candidate_rows"]].values.tolist() == [["upstream_complete", 0]]
    missing = json.loads(rejects.iloc[0]["offending"])
    assert [m["date"][:10] for m in missing] == ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04", "2024-04-05"]
    assert {m["materialize"] for m in missing} == {"features"}
