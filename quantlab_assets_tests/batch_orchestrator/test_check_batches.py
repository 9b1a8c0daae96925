"""Per-partition check evaluations (issue 22 point 1) written as one batch store exactly the rows
the stock per-event path stores: the run shard's events, their index mirror, and every planned
``asset_check_executions`` row resolved to its partition's verdict."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from quantlab_assets.batch_orchestrator.event_log_storage import BATCH_SIZE_ENV, BatchingSqliteEventLogStorage
from quantlab_assets.common.gates import GateResult
from quantlab_assets.metadata import gate_check_events
from quantlab_assets_tests.batch_orchestrator.test_event_log_storage import DAYS, _tables


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec("rows_ok", asset="book", partitions_def=DAYS, blocking=False),
        dg.AssetCheckSpec("complete", asset="book", partitions_def=DAYS),
    ],
)
def book(context):
    yield dg.MaterializeResult()
    # A warning dated on two days: those partitions fail, the others pass.
    bad = pd.DataFrame({"date": pd.to_datetime(["2024-01-10", "2024-02-05"]), "why": ["x", "y"]})
    yield from gate_check_events(
        context, GateResult("rows_ok", False, "2 bad rows", blocking=False, offending=bad), "book"
    )
    yield from gate_check_events(context, GateResult("complete", True, "all there"), "book")


def test_batched_check_evaluations_store_the_stock_rows(tmp_path, monkeypatch):
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    (tmp_path / "source").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "source")) as instance:
        tags = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-02-29"}
        result = dg.materialize([book], instance=instance, tags=tags)
        assert result.success
        events = list(instance.all_logs(result.run_id))
    evaluations = [e for e in events if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    assert len(evaluations) == 2 * 60
    data = [e.get_dagster_event().asset_check_evaluation_data for e in evaluations]
    verdicts = {(d.check_name, d.partition): d.passed for d in data}
    assert [p for (c, p), ok in sorted(verdicts.items()) if c == "rows_ok" and not ok] == ["2024-01-10", "2024-02-05"]

    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for event in events:
        stock.store_event(event)
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"), batch_size=0)
    batch: list = []
    for event in events + [None]:  # consecutive evaluations as one batch, as the step logs them
        if event is not None and event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            batch.append(event)
            continue
        if batch:
            assert batching._fast_path(batch)
            batching.store_event_batch(batch)
            batch = []
        if event is not None:
            batching.store_event(event)
    expected, got = _tables(tmp_path / "stock"), _tables(tmp_path / "batching")
    assert expected.keys() == got.keys()
    for table in expected:
        assert got[table] == expected[table], table
    rows = [r for r in got["index.asset_check_executions"] if r[2] == "rows_ok"]
    assert sorted((r[3], r[5]) for r in rows if r[5] != "SUCCEEDED") == [
        ("2024-01-10", "FAILED"),
        ("2024-02-05", "FAILED"),
    ]


def test_an_undated_failure_fails_every_partition_with_the_rules_own_description(tmp_path, monkeypatch):
    """A rule whose offending rows carry no date (a share over the range) fails every partition
    of the run, each with the rule's own description (not "no offending row on ...")."""

    @dg.asset(
        partitions_def=DAYS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[dg.AssetCheckSpec("share", asset="pending", partitions_def=DAYS, blocking=False)],
    )
    def pending(context):
        yield dg.MaterializeResult()
        undated = pd.DataFrame({"horizon": [1, 5], "missing": [100, 300]})
        yield from gate_check_events(
            context, GateResult("share", False, "not yet available", blocking=False, offending=undated), "pending"
        )

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tags = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-05"}
        result = dg.materialize([pending], instance=instance, tags=tags)
    evs = result.get_asset_check_evaluations()
    assert [e.partition for e in evs] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    assert all(not e.passed and e.description == "not yet available" for e in evs)
    assert all("offending_rows" in e.metadata for e in evs)
