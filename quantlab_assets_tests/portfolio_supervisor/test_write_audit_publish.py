"""Write-audit-publish through the real Definitions: a supervision whose candidate rows fail a
blocking rule leaves every stored approval and tradable book bit for bit, records the refusal in
``audit_rejects``, fails the check naming the day and symbol, and marks its partitions not written."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core.kpis import SINCE_START
from quantlab_assets.backtest_engine.core.schema import BACKTEST_KPIS
from quantlab_assets.common.publish import read_audit_rejects
from quantlab_assets.common.warehouse import connect, replace_strategy_slice, table_checksum
from quantlab_assets.portfolio_supervisor.core import step as core
from quantlab_assets.portfolio_supervisor.core.evaluate import REJECTED
from quantlab_assets.portfolio_supervisor.core.gate import APPROVED_TARGETS_WITHIN_RULES, EVERY_REJECTION_HAS_REASON
from quantlab_assets.portfolio_supervisor.core.schema import APPROVAL_LOG, APPROVALS, APPROVED_TARGETS
from quantlab_assets.strategy_lab.core.schema import TARGETS

STRATEGY, OTHER = "momentum_topk", "low_volatility"
START, END = "2024-04-01", "2024-04-03"
DAYS = pd.to_datetime(["2024-04-01", "2024-04-02", "2024-04-03"])
NAMES = [f"S{i:02d}" for i in range(10)]


def _seed(db) -> None:
    """Ten names at 10% each day, and KPIs too short for the performance limits: approved."""
    with connect(db) as con:
        for name in (STRATEGY, OTHER):
            targets = pd.concat([pd.DataFrame({"date": d, "symbol": NAMES, "weight": 0.1}) for d in DAYS])
            targets = targets.assign(strategy=name, score=1.0, rebalance=True)
            kpis = pd.DataFrame({c: [np.nan] * len(DAYS) for c in BACKTEST_KPIS.column_names})
            kpis = kpis.assign(date=DAYS, strategy=name, scope=SINCE_START, sessions=1)
            replace_strategy_slice(con, TARGETS, targets, name, START, END)
            replace_strategy_slice(con, BACKTEST_KPIS, kpis, name, START, END)


def _keys(name, *stages):
    return [dg.AssetKey([name, f"{name}_{stage}"]) for stage in stages]


def _run(selection):
    from quantlab_assets.definitions import defs

    tags = {"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END}
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=selection, raise_on_error=False
    )


def _state(db) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        state = {
            t.name: table_checksum(con, t.name, t.column_names) for t in (APPROVALS, APPROVED_TARGETS, APPROVAL_LOG)
        }
        for name in (STRATEGY, OTHER):
            for t in (APPROVALS, APPROVED_TARGETS):
                q = f'SELECT count(*) FROM "{t.name}" WHERE strategy = ?'
                state[(t.name, name)] = con.execute(q, [name]).fetchall()[0][0]
    return state


def _over_the_limit(supervise):
    """The core emits a tradable book with S00 at 30% on the last day (a bug the audit must stop)."""

    def broken(*args, **kwargs):
        approvals, books = supervise(*args, **kwargs)
        hit = (books["date"] == DAYS[-1]) & (books["symbol"] == "S00")
        return approvals, books.assign(weight=books["weight"].mask(hit, 0.3))

    return broken


def _silent_rejection(supervise):
    """The core emits a rejected day without a reason."""

    def broken(*args, **kwargs):
        approvals, books = supervise(*args, **kwargs)
        day = approvals["date"] == DAYS[1]
        return approvals.assign(
            status=approvals["status"].mask(day, REJECTED), reasons=approvals["reasons"].mask(day, None)
        ), books

    return broken


@pytest.mark.parametrize(
    "fault,stages,asset,rule,named",
    [
        (
            _over_the_limit,
            ("approvals", "approved_targets"),
            "approved_targets",
            APPROVED_TARGETS_WITHIN_RULES,
            ["2024-04-03", "S00 weight 30.00% exceeds the single-name limit 15.00%"],
        ),
        (_silent_rejection, ("approvals",), "approvals", EVERY_REJECTION_HAS_REASON, ["2024-04-02"]),
    ],
    ids=["book-over-a-limit", "rejection-without-reason-approvals-alone"],
)
def test_a_refused_audit_keeps_the_stored_rows_and_says_why(
    lab_env, small_universe, monkeypatch, fault, stages, asset, rule, named
):
    db = lab_env["QUANTLAB_DB"]
    _seed(db)
    first = _run(_keys(STRATEGY, "approvals", "approved_targets") + _keys(OTHER, "approvals", "approved_targets"))
    assert first.success, [e.message for e in first.all_events if e.event_type_value == "STEP_FAILURE"]
    before = _state(db)
    assert before[("approvals", STRATEGY)] == 3 and before[("approved_targets", OTHER)] == 30

    monkeypatch.setattr(core, "supervise", fault(core.supervise))
    result = _run(_keys(STRATEGY, *stages))
    assert not result.success
    assert _state(db) == before  # both strategies' rows, and the approval log, bit for bit

    with duckdb.connect(str(db)) as con:  # read-write: the reader makes sure the table exists
        rejects = read_audit_rejects(con, result.run_id)
    assert rejects["rule"].tolist() == [rule] and rejects["contract"].tolist() == [f"approvals/{STRATEGY}"]
    assert rejects["candidate_rows"].iloc[0] > 0
    offending = json.dumps(json.loads(rejects["offending"].iloc[0]))
    assert all(text in rejects["reason"].iloc[0] + offending for text in named), (rejects["reason"].iloc[0], offending)

    key = f"{STRATEGY}/{STRATEGY}_{asset}"
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = checks[(key, rule)]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert all(text in failed.description for text in named), failed.description
    assert checks[(key, "upstream_complete")].passed
    for m in result.get_asset_materialization_events():
        meta = m.materialization.metadata
        assert meta["dagster/row_count"].value == 0 and rule in meta["not_written"].value, meta
        assert meta["session"].value.startswith("not written: the audit refused the new rows"), meta
    assert {(m.asset_key.to_user_string(), m.partition) for m in result.get_asset_materialization_events()} == {
        (f"{STRATEGY}/{STRATEGY}_{stage}", str(d.date())) for stage in stages for d in DAYS
    }


def test_the_approval_log_holds_published_decisions_once_per_run(lab_env, small_universe):
    db = lab_env["QUANTLAB_DB"]
    _seed(db)
    runs = [_run(_keys(STRATEGY, "approvals")) for _ in range(2)]
    assert all(r.success for r in runs)
    with duckdb.connect(str(db), read_only=True) as con:
        log = con.execute(
            "SELECT run_id, count(*) FROM approval_log GROUP BY run_id ORDER BY min(logged_at)"
        ).fetchall()
        rejects = con.execute("SELECT count(*) FROM audit_rejects").fetchall()[0][0]
    assert log == [(r.run_id, 3) for r in runs] and rejects == 0
