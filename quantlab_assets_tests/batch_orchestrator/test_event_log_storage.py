"""The batching event log stores exactly what the stock SQLite event log stores.

The events come from a real single-run backfill (materializations with tags and metadata, a planned
event, a partitioned asset check, run status events); the same EventLogEntry objects are written once
through the stock per-event path and once through `store_event_batch`, and every table row is compared.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from quantlab_assets.batch_orchestrator import event_log_storage
from quantlab_assets.batch_orchestrator.event_log_storage import (
    BATCH_SIZE_ENV,
    PLANNED_SUBSETS_ENV,
    BatchingSqliteEventLogStorage,
    QuantLabSqliteStorage,
)

ROOT = Path(__file__).resolve().parents[2]
DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def prices(context):
    keys = context.partition_keys
    return dg.MaterializeResult(metadata={"dagster/row_count": len(keys)}, tags={"desk": "equities"})


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[prices],
    check_specs=[
        dg.AssetCheckSpec("non_empty", asset="signal"),
        # Partitioned: its planned event stores one asset_check_executions row per partition.
        dg.AssetCheckSpec("complete", asset="signal", partitions_def=DAYS),
    ],
)
def signal(context):
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="non_empty", passed=True, metadata={"rows": 3})
    yield dg.AssetCheckResult(check_name="complete", passed=True)


def _backfill(instance: dg.DagsterInstance) -> str:
    result = dg.materialize(
        [prices, signal],
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-02-29"},
    )
    assert result.success
    return result.run_id


WALL_CLOCK_COLUMNS = {"create_timestamp", "migration_completed"}  # set by SQLite when the row is written


def _tables(base_dir: Path) -> dict[str, list[tuple]]:
    """Every row of every table in every shard (ids included), except wall-clock defaults."""
    out: dict[str, list[tuple]] = {}
    for path in sorted(base_dir.glob("*.db")):
        shard = "index" if path.stem == "index" else "run"
        with sqlite3.connect(path) as conn:
            tables = [
                t
                for (t,) in conn.execute("select name from sqlite_master where type='table'")
                if t not in ("alembic_version", "sqlite_sequence")
            ]
            for table in tables:
                columns = [
                    c for (_, c, *_rest) in conn.execute(f"pragma table_info({table})") if c not in WALL_CLOCK_COLUMNS
                ]
                quoted = ", ".join(f'"{c}"' for c in columns)
                rows = conn.execute(f'select {quoted} from "{table}" order by 1').fetchall()
                out[f"{shard}.{table}"] = [tuple(str(v) for v in row) for row in rows]
    return out


@pytest.fixture
def run_events(tmp_path, monkeypatch):
    """All events of one real 60-partition single-run backfill, in order."""
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    (tmp_path / "source").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "source")) as instance:
        run_id = _backfill(instance)
        events = list(instance.all_logs(run_id))
    kinds = {e.dagster_event_type for e in events if e.is_dagster_event}
    assert DagsterEventType.ASSET_MATERIALIZATION in kinds and DagsterEventType.ASSET_CHECK_EVALUATION in kinds
    partitioned = [
        e.get_dagster_event().asset_check_planned_data.partitions_subset
        for e in events
        if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    ]
    assert any(subset is not None and len(subset) == 60 for subset in partitioned)
    return events


def test_store_event_batch_writes_the_same_rows_as_store_event(tmp_path, run_events, monkeypatch):
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for event in run_events:
        stock.store_event(event)

    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"), batch_size=0)
    fast_calls = []
    original = batching._fast_path
    monkeypatch.setattr(batching, "_fast_path", lambda evs: fast_calls.append(original(evs)) or fast_calls[-1])
    # Batches as Dagster forms them: consecutive materializations of a step go together.
    batch: list = []
    for event in run_events + [None]:
        if event is not None and event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
            batch.append(event)
            continue
        if batch:
            batching.store_event_batch(batch)
            batch = []
        if event is not None:
            batching.store_event(event)

    assert fast_calls and all(fast_calls), "the materializations went through the batched path"
    expected, got = _tables(tmp_path / "stock"), _tables(tmp_path / "batching")
    assert expected.keys() == got.keys()
    for table in expected:
        assert got[table] == expected[table], table
    materialized = [r for r in got["index.event_logs"] if r[3] == "ASSET_MATERIALIZATION"]
    assert len(materialized) == 2 * 60
    # The partitioned check's planned rows, one per partition (this storage's own insert).
    planned = [r for r in got["index.asset_check_executions"] if r[2] == "complete" and r[5] == "PLANNED"]
    assert sorted(r[3] for r in planned) == [str(d.date()) for d in pd.date_range("2024-01-01", periods=60)]


def test_a_mixed_batch_is_cut_into_batched_and_per_event_segments(tmp_path, run_events, monkeypatch):
    """A whole run as one batch: its uniform stretches (the planned events, each step's
    materializations) take the batched path, the rest the per-event one; the rows are the stock ones."""
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for event in run_events:
        stock.store_event(event)
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"), batch_size=0)
    assert not batching._fast_path(run_events)
    segments = list(batching._segments(run_events))
    assert [e for _, seg in segments for e in seg] == run_events, "every event once, in order"
    batched = [seg for fast, seg in segments if fast]
    assert sum(len(seg) for seg in batched) >= 2 * 60 + 2 * 60, "planned events and materializations batched"
    assert all(batching._fast_path(seg) for seg in batched)
    assert not any(batching._fast_path([e]) for fast, seg in segments if not fast for e in seg)
    batching.store_event_batch(run_events)
    assert _tables(tmp_path / "batching") == _tables(tmp_path / "stock")


def test_planned_events_with_a_planned_check_in_between(tmp_path, run_events, monkeypatch):
    """How Dagster forms a run's planned batch (sorted by asset key, so a check's planned event sits
    between its asset's planned materializations): two batched segments around one per-event one."""
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    planned = [e for e in run_events if e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED]
    check_planned = [e for e in run_events if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED]
    assert len(planned) == 2 * 60 and check_planned
    mixed = planned[:90] + check_planned + planned[90:]
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for event in mixed:
        stock.store_event(event)
    batching = BatchingSqliteEventLogStorage(str(tmp_path / "batching"), batch_size=0)
    assert [(fast, len(seg)) for fast, seg in batching._segments(mixed)] == [
        (True, 90),
        (False, len(check_planned)),
        (True, 30),
    ]
    batching.store_event_batch(mixed)
    assert _tables(tmp_path / "batching") == _tables(tmp_path / "stock")


def test_the_repository_instance_batches_and_reads_back_every_partition(tmp_path, monkeypatch):
    for var in (BATCH_SIZE_ENV, PLANNED_SUBSETS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    batches = []
    original = BatchingSqliteEventLogStorage.store_event_batch
    monkeypatch.setattr(
        BatchingSqliteEventLogStorage,
        "store_event_batch",
        lambda self, events: batches.append(len(events)) or original(self, events),
    )
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        assert not instance.event_log_storage.supports_partition_subset_in_asset_materialization_planned_events
        assert event_log_storage.os.environ[BATCH_SIZE_ENV] == str(event_log_storage.DEFAULT_BATCH_SIZE)
        run_id = _backfill(instance)

        # At run creation one batch of 120 planned materializations + 2 planned check evaluations
        # (those take the per-event path), then each step's 60 materializations.
        assert sorted(batches) == [60, 60, 2 * 60 + 2]
        for key in (prices.key, signal.key):
            assert len(instance.get_materialized_partitions(key)) == 60
            assert instance.get_latest_materialization_event(key).dagster_event.partition == "2024-02-29"
            assert instance.get_asset_records([key])[0].asset_entry.last_run_id == run_id
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=prices.key, asset_partitions=["2024-01-15"]), limit=5
        ).records
        assert [r.asset_materialization.tags["desk"] for r in records] == ["equities"]
        planned = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1000
        )
        assert len(planned.records) == 2 * 60, "one planned event per asset and partition"


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def flaky(context):
    if "2024-01-10" in context.partition_keys:
        raise RuntimeError("no data for 2024-01-10")
    return dg.MaterializeResult()


def test_partitions_of_a_failed_run_show_as_failed(tmp_path, monkeypatch):
    """What the UI's partition bar shows: a failed daily run and a failed range are FAILED, not missing."""
    for var in (BATCH_SIZE_ENV, PLANNED_SUBSETS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.get() as instance:
        daily = dg.materialize([flaky], instance=instance, partition_key="2024-01-10", raise_on_error=False)
        ranged = dg.materialize(
            [flaky],
            instance=instance,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": "2024-01-08",
                "dagster/asset_partition_range_end": "2024-01-12",
            },
        )
        assert not daily.success and not ranged.success
        keys = [f"2024-01-{d:02d}" for d in range(6, 15)]
        status = instance.get_status_by_partition(flaky.key, keys, DAYS)
        failed = sorted(k for k, v in status.items() if v is not None and v.value == "FAILED")
        assert failed == [f"2024-01-{d:02d}" for d in range(8, 13)]


def test_an_explicit_environment_wins_over_the_storage_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv(BATCH_SIZE_ENV, "0")
    monkeypatch.setenv(PLANNED_SUBSETS_ENV, "false")
    storage = QuantLabSqliteStorage(str(tmp_path))
    assert event_log_storage.os.environ[BATCH_SIZE_ENV] == "0"
    assert not storage.event_log_storage.supports_partition_subset_in_asset_materialization_planned_events


def test_event_log_commits_without_waiting_for_fsync(tmp_path):
    """WAL with synchronous=NORMAL on the run and index shards (an fsync per commit cost ~2.6 ms,
    two per unbatched event); the stock storage keeps FULL."""
    storage = BatchingSqliteEventLogStorage(str(tmp_path / "batching"))
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for shard in ("index", "some-run-id"):
        with storage._connect(shard) as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        with stock._connect(shard) as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
