"""The batching Postgres event log stores exactly what dagster-postgres's per-event path stores,
on a real PostgreSQL server (scripts/postgres.sh; the tests skip without one, except in CI).

Same method as test_event_log_storage.py: the events of one real single-run backfill, written once
event by event through the stock `PostgresEventLogStorage` and once in batches as Dagster forms
them through `BatchingPostgresEventLogStorage`, every table row compared.
"""

from __future__ import annotations

import shutil

import dagster as dg
import sqlalchemy as db
from dagster._core.events import DagsterEventType
from dagster_postgres.event_log import PostgresEventLogStorage

from quantlab_assets.batch_orchestrator.event_log_storage import BATCH_SIZE_ENV, PLANNED_SUBSETS_ENV
from quantlab_assets.batch_orchestrator.postgres_storage import BatchingPostgresEventLogStorage
from quantlab_assets_tests.batch_orchestrator.test_event_log_storage import (  # noqa: F401  (fixture)
    _backfill,
    prices,
    run_events,
    signal,
)
from quantlab_assets_tests.conftest import PROJECT_ROOT, postgres_url

WALL_CLOCK_COLUMNS = {"create_timestamp", "update_timestamp", "migration_completed"}  # set by the server
# asset_keys.id is a surrogate nothing refers to (lookups go by asset_key); every per-event upsert
# that hits the existing row still draws a sequence value, so the stock path leaves gaps in it.
SURROGATE_IDS = {"asset_keys": "id"}
BATCHED = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_MATERIALIZATION_PLANNED}


def _tables(url: str) -> dict[str, list[tuple]]:
    """Every row of every table (ids included), except wall-clock defaults."""
    engine = db.create_engine(url, poolclass=db.pool.NullPool)
    out = {}
    try:
        with engine.connect() as conn:
            for table in db.inspect(conn).get_table_names():
                if table == "alembic_version":
                    continue
                columns = [
                    c["name"]
                    for c in db.inspect(conn).get_columns(table)
                    if c["name"] not in WALL_CLOCK_COLUMNS and c["name"] != SURROGATE_IDS.get(table)
                ]
                quoted = ", ".join(f'"{c}"' for c in columns)
                rows = conn.execute(db.text(f'SELECT {quoted} FROM "{table}" ORDER BY 1, 2')).fetchall()
                out[table] = [tuple(str(v) for v in row) for row in rows]
    finally:
        engine.dispose()
    return out


def _batches(events):
    """Runs of consecutive events of one batch-writable type, as Dagster hands them to storage;
    every other event alone."""
    batch: list = []
    for event in events:
        if batch and event.dagster_event_type != batch[0].dagster_event_type:
            yield batch
            batch = []
        if event.dagster_event_type in BATCHED:
            batch.append(event)
        else:
            yield [event]
    if batch:
        yield batch


def test_store_event_batch_writes_the_same_rows_as_store_event(
    postgres_server,
    make_postgres_db,
    run_events,  # noqa: F811 - pytest fixture
    monkeypatch,
):
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    stock_url, batching_url = (postgres_url(postgres_server, make_postgres_db()) for _ in range(2))
    stock = PostgresEventLogStorage(stock_url)
    for event in run_events:
        stock.store_event(event)

    batching = BatchingPostgresEventLogStorage(batching_url, batch_size=0)
    fast = []
    for batch in _batches(run_events):
        if len(batch) == 1:
            batching.store_event(batch[0])
        else:
            fast.append(batching._fast_path(batch))
            batching.store_event_batch(batch)
    stock.dispose()
    batching.dispose()

    # The planned events (120, two assets in one batch) and each step's 60 materializations.
    assert len(fast) == 3 and all(fast), "the batches went through the batched path"
    expected, got = _tables(stock_url), _tables(batching_url)
    assert expected.keys() == got.keys()
    for table in expected:
        assert got[table] == expected[table], table
    kinds = [r[3] for r in got["event_logs"]]
    assert kinds.count("ASSET_MATERIALIZATION") == 2 * 60 and kinds.count("ASSET_MATERIALIZATION_PLANNED") == 2 * 60


def test_a_mixed_batch_is_cut_into_segments(postgres_server, make_postgres_db, run_events, monkeypatch):  # noqa: F811 - pytest fixture
    """The run's planned events with the planned check evaluation, one batch as Dagster forms it:
    the planned materializations take the batched path, the check's planned event goes to
    dagster-postgres; the rows are the per-event path's."""
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    planned = [
        e
        for e in run_events
        if e.dagster_event_type
        in (DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)
    ]
    assert {e.dagster_event_type for e in planned} == {
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    }
    stock_url, batching_url = (postgres_url(postgres_server, make_postgres_db()) for _ in range(2))
    stock = PostgresEventLogStorage(stock_url)
    for event in planned:
        stock.store_event(event)
    batching = BatchingPostgresEventLogStorage(batching_url, batch_size=0)
    assert not batching._fast_path(planned)
    segments = list(batching._segments(planned))
    assert [e for _, seg in segments for e in seg] == planned
    assert sum(len(seg) for fast, seg in segments if fast) == 2 * 60
    batching.store_event_batch(planned)
    stock.dispose()
    batching.dispose()
    assert _tables(batching_url) == _tables(stock_url)


def test_the_documented_instance_batches_and_reads_back_every_partition(postgres_db, tmp_path, monkeypatch):
    for var in (BATCH_SIZE_ENV, PLANNED_SUBSETS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(PROJECT_ROOT / "docs" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    batches = []
    original = BatchingPostgresEventLogStorage.store_event_batch
    monkeypatch.setattr(
        BatchingPostgresEventLogStorage,
        "store_event_batch",
        lambda self, events: batches.append(len(events)) or original(self, events),
    )
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BatchingPostgresEventLogStorage)
        # Unbatched events reuse one pooled connection (docs/scaling.md: 5x per event on this machine).
        assert instance.event_log_storage._engine.pool.size() == 1
        assert not instance.event_log_storage.supports_partition_subset_in_asset_materialization_planned_events
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
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(signal.key, "non_empty")]
        )
        assert check[dg.AssetCheckKey(signal.key, "non_empty")].run_id == run_id
