"""Write-audit-publish for derived contracts: a refused slice leaves the stored rows bit for bit."""

import json

import duckdb
import pandas as pd
import pytest

from quantlab_assets.common.gates import GateResult
from quantlab_assets.common.publish import AUDIT_REJECTS, Slice, audit_and_publish, read_audit_rejects
from quantlab_assets.common.warehouse import Column, TableSchema, read_slice, replace_slice, table_checksum

SHARED = TableSchema(
    "shared",
    (Column("date", "DATE", False), Column("strategy", "VARCHAR", False), Column("x", "DOUBLE")),
)
PLAIN = TableSchema("plain", (Column("date", "DATE", False), Column("y", "DOUBLE")))
DAYS = pd.to_datetime(["2024-02-05", "2024-02-06"])


@pytest.fixture
def con():
    c = duckdb.connect(":memory:")
    replace_slice(c, SHARED, pd.DataFrame({"date": DAYS, "strategy": ["a", "a"], "x": [1.0, 2.0]}), DAYS[0], DAYS[1])
    replace_slice(c, SHARED, pd.DataFrame({"date": DAYS, "strategy": ["b", "b"], "x": [7.0, 8.0]}), DAYS[0], DAYS[1])
    replace_slice(c, PLAIN, pd.DataFrame({"date": DAYS, "y": [3.0, 4.0]}), DAYS[0], DAYS[1])
    yield c
    c.close()


def _slices(x, y):
    return [
        Slice(SHARED, pd.DataFrame({"date": DAYS, "x": x}), strategy="a"),
        Slice(PLAIN, pd.DataFrame({"date": DAYS, "y": y})),
    ]


def test_passing_audit_publishes_every_slice_and_only_its_strategy(con):
    gate = [GateResult("finite", True, "all finite"), GateResult("warn", False, "a warning", blocking=False)]
    out = audit_and_publish(con, _slices([10.0, 20.0], [30.0, 40.0]), gate, DAYS[0], DAYS[1], contract="t", run_id="r1")
    assert out.published and out.reason == ""
    assert out.rows == {"shared": 2, "plain": 2}
    stored = read_slice(con, SHARED, DAYS[0], DAYS[1]).sort_values(["strategy", "date"])
    assert stored["x"].tolist() == [10.0, 20.0, 7.0, 8.0]  # strategy b untouched
    assert read_slice(con, PLAIN, DAYS[0], DAYS[1])["y"].tolist() == [30.0, 40.0]
    assert len(read_audit_rejects(con)) == 0


def test_failing_audit_keeps_stored_rows_bit_for_bit_and_records_the_refusal(con):
    before = {t.name: table_checksum(con, t.name, t.column_names) for t in (SHARED, PLAIN)}
    offending = pd.DataFrame({"date": [DAYS[1]], "x": [float("inf")]})
    gate = [
        GateResult("finite", False, "1 infinite value in x", offending=offending),
        GateResult("other", True, "fine"),
    ]
    out = audit_and_publish(
        con, _slices([10.0, float("inf")], [30.0, 40.0]), gate, DAYS[0], DAYS[1], contract="t/a", run_id="r2"
    )
    assert not out.published
    assert [g.name for g in out.failures] == ["finite"]
    assert "finite: 1 infinite value in x" in out.reason and "stored rows were kept" in out.reason
    assert {t.name: table_checksum(con, t.name, t.column_names) for t in (SHARED, PLAIN)} == before
    rejects = read_audit_rejects(con, "r2")
    assert rejects[["contract", "rule", "reason", "candidate_rows"]].values.tolist() == [
        ["t/a", "finite", "1 infinite value in x", 4]
    ]
    assert json.loads(rejects["offending"].iloc[0]) == [{"date": "2024-02-06T00:00:00.000", "x": "inf"}]
    assert list(rejects.columns) == AUDIT_REJECTS.column_names


def test_error_while_publishing_rolls_back_every_slice(con):
    before = {t.name: table_checksum(con, t.name, t.column_names) for t in (SHARED, PLAIN)}
    bad = [
        Slice(SHARED, pd.DataFrame({"date": DAYS, "x": [5.0, 6.0]}), strategy="a"),
        Slice(PLAIN, pd.DataFrame({"date": pd.to_datetime(["2024-03-01"]), "y": [1.0]})),  # outside the slice
    ]
    with pytest.raises(ValueError, match="outside the slice"):
        audit_and_publish(con, bad, [], DAYS[0], DAYS[1], contract="t", run_id="r3")
    assert {t.name: table_checksum(con, t.name, t.column_names) for t in (SHARED, PLAIN)} == before
