"""The supervision of a partition, without Dagster: hand-worked days, the audit of exactly the
candidate rows, and a range decided in one call equal to the same days decided one by one."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core.kpis import SINCE_START, trailing_scope
from quantlab_assets.backtest_engine.core.schema import BACKTEST_KPIS
from quantlab_assets.common.publish import audit_and_publish
from quantlab_assets.common.warehouse import read_strategy_slice, replace_strategy_slice
from quantlab_assets.portfolio_supervisor.core.evaluate import APPROVED, REJECTED, Verdict
from quantlab_assets.portfolio_supervisor.core.gate import (
    APPROVED_TARGETS_WITHIN_RULES,
    DAY_APPROVED,
    EVERY_REJECTION_HAS_REASON,
)
from quantlab_assets.portfolio_supervisor.core.rules import load_rules
from quantlab_assets.portfolio_supervisor.core.schema import APPROVALS, APPROVED_TARGETS
from quantlab_assets.portfolio_supervisor.core.step import performance, supervision_partition
from quantlab_assets.portfolio_supervisor.core.store import (
    flagged_symbols,
    latest_overrides,
    read_inputs,
    record_override,
)
from quantlab_assets.strategy_lab.core.schema import TARGETS
from quantlab_assets.strategy_lab.core.spec import load_strategy

NAME = "momentum_topk"
DAYS = pd.to_datetime(["2024-04-01", "2024-04-02", "2024-04-03"])
NAMES = [f"S{i:02d}" for i in range(10)]
LIMITS = load_rules().for_strategy(NAME)  # packaged defaults: max_weight 0.15, min_names 8, max_hhi 0.15
SPEC = load_strategy(Path(__file__).resolve().parents[2] / "strategies" / f"{NAME}.yaml")


def _targets() -> pd.DataFrame:
    """Day 1: S00 at 20% (over the 15% single-name limit); days 2 and 3: ten names at 10%."""
    day1 = pd.DataFrame({"date": DAYS[0], "symbol": NAMES, "weight": [0.2] + [0.08] * 9})
    later = [pd.DataFrame({"date": d, "symbol": NAMES, "weight": 0.1}) for d in DAYS[1:]]
    frame = pd.concat([day1, *later], ignore_index=True)
    return frame.assign(strategy=NAME, score=np.arange(len(frame), dtype=float), rebalance=True)


def _kpis() -> pd.DataFrame:
    rows = pd.DataFrame({c: [np.nan] * len(DAYS) for c in BACKTEST_KPIS.column_names})
    return rows.assign(date=DAYS, strategy=NAME, scope=SINCE_START, sessions=1)


def _seeded() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(":memory:")
    replace_strategy_slice(c, TARGETS, _targets(), NAME, DAYS[0], DAYS[-1])
    replace_strategy_slice(c, BACKTEST_KPIS, _kpis(), NAME, DAYS[0], DAYS[-1])
    return c


@pytest.fixture
def con():
    c = _seeded()
    yield c
    c.close()


def _publish(con, start, end, run_id):
    out = _decide(con, start, end)
    tables = [APPROVALS, APPROVED_TARGETS]
    return audit_and_publish(
        con, out.slices(tables, NAME), out.audit(tables), start, end, contract=f"approvals/{NAME}", run_id=run_id
    )


def _decide(con, start, end):
    inputs, overrides = read_inputs(con, NAME, start, end), latest_overrides(con, NAME, start, end)
    return supervision_partition(inputs, SPEC, LIMITS, overrides, start, end)


def test_three_days_by_hand(con):
    out = _decide(con, DAYS[0], DAYS[-1])
    a = out.approvals.set_index("date")
    assert a["status"].tolist() == [REJECTED, APPROVED, APPROVED]
    assert a.loc[DAYS[0], "reasons"] == "S00 weight 20.00% exceeds the single-name limit 15.00%"
    assert a.loc[DAYS[0], "flags"] == "max_weight:S00"
    books = out.approved_targets.set_index(["date", "symbol"])
    # Day 1 rejected before anything was approved: flat. Day 2: S00 flagged the day before goes
    # to cash (the other nine stay at 10%). Day 3: nothing flagged on day 2, the targets as they are.
    assert (books.loc[DAYS[0], "weight"] == 0.0).all()
    assert books.loc[DAYS[0], "source"].unique().tolist() == ["flat (nothing approved yet)"]
    assert books.loc[(DAYS[1], "S00"), "weight"] == 0.0 and books.loc[(DAYS[1], "S01"), "weight"] == 0.1
    assert books.loc[DAYS[1], "source"].unique().tolist() == ["targets without flagged S00"]
    assert (books.loc[DAYS[2], "weight"] == 0.1).all() and books.loc[DAYS[2], "source"].unique().tolist() == ["targets"]
    # The audit ran on exactly these rows and passed.
    assert [g.name for g in out.checks(APPROVALS)] == ["upstream_complete", EVERY_REJECTION_HAS_REASON, DAY_APPROVED]
    assert [g.name for g in out.checks(APPROVED_TARGETS)] == ["upstream_complete", APPROVED_TARGETS_WITHIN_RULES]
    assert all(g.passed for g in out.audit([APPROVALS, APPROVED_TARGETS]) if g.blocking)
    assert out.rules[APPROVED_TARGETS.name].description == "3 tradable books within the limits"
    # Issue 22 point 7: the rejected day is a warning dated on that day alone (its partition in the UI).
    day = out.warnings[APPROVALS.name]
    assert not day.passed and not day.blocking
    assert day.offending["date"].tolist() == [DAYS[0]] and day.offending["status"].tolist() == [REJECTED]
    assert day.description == (
        f"1 of 3 day(s) not approved, e.g. {DAYS[0].date()} rejected: "
        "S00 weight 20.00% exceeds the single-name limit 15.00%"
    )


def test_audit_covers_only_the_tables_being_published(con):
    out = _decide(con, DAYS[0], DAYS[-1])
    assert [g.name for g in out.audit([APPROVALS])] == ["upstream_complete", EVERY_REJECTION_HAS_REASON, DAY_APPROVED]
    assert [g.name for g in out.audit([APPROVED_TARGETS])] == ["upstream_complete", APPROVED_TARGETS_WITHIN_RULES]
    assert [s.schema.name for s in out.slices([APPROVED_TARGETS], NAME)] == [APPROVED_TARGETS.name]


def test_missing_inputs_decide_nothing_and_name_the_asset_to_materialize(con):
    start, end = DAYS[0], pd.Timestamp("2024-04-04")  # no targets nor KPIs on 04-04
    inputs = read_inputs(con, NAME, start, end)
    out = supervision_partition(
        inputs, SPEC, LIMITS, latest_overrides(con, NAME, start, end), start, end, {"targets": "x/x_targets"}
    )
    assert not out.upstream.passed
    assert {name: (r.passed, r.blocking, r.description) for name, r in out.rules.items()} == {
        table: (False, False, "not evaluated: upstream_complete failed, nothing was computed")
        for table in ("approvals", "approved_targets")
    }
    assert "targets missing for 1 of 4 sessions" in out.upstream.description
    assert "materialize x/x_targets first" in out.upstream.description
    assert len(out.approvals) == 0 and len(out.approved_targets) == 0
    audit = out.audit([APPROVALS, APPROVED_TARGETS])
    assert [g.name for g in audit] == [
        "upstream_complete",
        EVERY_REJECTION_HAS_REASON,
        DAY_APPROVED,
        APPROVED_TARGETS_WITHIN_RULES,
    ]
    assert [g.name for g in audit if g.blocking and not g.passed] == ["upstream_complete"]


def test_an_override_replaces_the_status_and_is_named(con):
    record_override(con, NAME, DAYS[0], APPROVED, "known event", "tester")
    out = _decide(con, DAYS[0], DAYS[0])
    row = out.approvals.iloc[0]
    assert (row["status"], row["rule_status"], row["override_by"]) == (APPROVED, REJECTED, "tester")
    # A person approved a book over a hard limit: the tradable book breaks it, and the audit says so.
    rule = out.rules[APPROVED_TARGETS.name]
    assert not rule.passed and rule.offending["symbols"].tolist() == ["S00"]
    assert "2024-04-01: S00 weight 20.00% exceeds the single-name limit 15.00%" in rule.description


def test_a_range_in_one_call_equals_the_same_days_one_by_one(con):
    batch = _seeded()
    assert _publish(batch, DAYS[0], DAYS[-1], "batch").published
    for day in DAYS:  # each day starts from the stored decision and book of the day before
        assert _publish(con, day, day, "daily").published
    for table in (APPROVALS, APPROVED_TARGETS):
        pd.testing.assert_frame_equal(
            read_strategy_slice(batch, table, NAME, DAYS[0], DAYS[-1]),
            read_strategy_slice(con, table, NAME, DAYS[0], DAYS[-1]),
            check_exact=True,
        )
    assert read_strategy_slice(con, APPROVALS, NAME, DAYS[0], DAYS[-1])["status"].tolist() == [
        REJECTED,
        APPROVED,
        APPROVED,
    ]
    batch.close()


def test_kpi_scope_is_the_trailing_window_once_full():
    def kpis(trailing_sessions):
        return pd.DataFrame(
            {
                "date": DAYS[0],
                "scope": [SINCE_START, trailing_scope(252)],
                "sessions": [300, trailing_sessions],
                "max_drawdown": [-0.3, -0.1],
                "sharpe_ratio": [0.5, 1.5],
            }
        )

    def picked(frame, day):
        p = performance(frame, pd.DatetimeIndex([day]))
        return {"scope": p.scope[0], "sessions": p.sessions[0], "max_drawdown": p.max_drawdown[0]}

    assert picked(kpis(252), DAYS[0]) == {"scope": "trailing_252", "sessions": 252, "max_drawdown": -0.1}
    assert performance(kpis(252), pd.DatetimeIndex([DAYS[0]])).sharpe_ratio[0] == 1.5
    assert picked(kpis(251), DAYS[0]) == {"scope": SINCE_START, "sessions": 300, "max_drawdown": -0.3}
    assert picked(kpis(251), DAYS[1])["sessions"] == 0  # no KPIs that day: nothing to judge


def test_stored_flags_name_the_flagged_symbols_as_the_verdict_does():
    verdict = Verdict(REJECTED, flags=["max_weight:B", "max_gross", "max_weight:A"])
    assert flagged_symbols(",".join(verdict.flags)) == verdict.flagged_symbols == ["A", "B"]
    assert flagged_symbols(None) == [] and flagged_symbols("max_gross") == []
