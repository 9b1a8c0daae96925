"""SQLite event log storage that writes a step's per-partition events in one transaction.

Why: a single-run backfill emits one ASSET_MATERIALIZATION event per asset and partition. The stock
`SqliteEventLogStorage` stores each one on its own: a new SQLAlchemy engine per statement, a schema
inspection per event, and two committed transactions (run shard and cross-run index). Measured here
at ~10 ms per event, that bookkeeping was most of a 10-year backfill (docs/scaling.md).

Dagster already groups a step's per-partition asset events (and a run's planned events) into
batches when DAGSTER_EVENT_BATCH_SIZE is positive and hands each batch to
`EventLogStorage.store_event_batch`, but the SQL storages inherit the default implementation that
loops over `store_event`. This class implements it: one transaction on the run shard (one
executemany) and one on the index shard (the event rows, their tags, and the asset entry written
once per asset from the batch's last event, which is the row the per-event path leaves behind).
It also keeps one engine per shard and remembers schema facts that only ever become true.

The rows written are the same as the stock storage's (a test compares both event logs); anything
the fast path does not cover falls back to the stock per-event path.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

import sqlalchemy
from dagster import Field
from dagster import _check as check
from dagster._config import BoolSource, IntSource, StringSource
from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.pool import NullPool

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
PLANNED_SUBSETS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
DEFAULT_BATCH_SIZE = 1000
# A webserver touches many run shards over its life; keep only the recent engines.
MAX_CACHED_ENGINES = 64
# Events whose whole storage is a run-shard row plus an index mirror (no run status, no check rows).
_FAST_PATH_EVENTS = ASSET_EVENTS - {DagsterEventType.FRESHNESS_STATE_CHANGE}


# The batching settings, shared by this storage and the Postgres one (postgres_storage.py).
BATCHING_CONFIG = {
    "batch_size": Field(
        IntSource,
        is_required=False,
        default_value=DEFAULT_BATCH_SIZE,
        description="Events per store_event_batch; exported as DAGSTER_EVENT_BATCH_SIZE.",
    ),
    "planned_event_subsets": Field(
        BoolSource,
        is_required=False,
        default_value=False,
        description="One ASSET_MATERIALIZATION_PLANNED event per asset and run carrying the partition "
        "subset, instead of one per partition (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS). "
        "Off: with batched writes the per-partition events cost ~nothing, and only they let "
        "the UI mark the partitions of a failed run as failed.",
    ),
}
_CONFIG = {"base_dir": StringSource, **BATCHING_CONFIG}


class EventBatching:
    """What the batching event logs share (mixed in before the stock storage class): the batch size
    Dagster reads from the environment, the planned-event setting, and which batches they write
    in one go (`_fast_path`); the rest goes through the stock per-event path."""

    def _init_batching(self, batch_size: int, planned_event_subsets: bool) -> None:
        self._planned_event_subsets = check.bool_param(planned_event_subsets, "planned_event_subsets")
        self.batch_size = check.int_param(batch_size, "batch_size")
        # Dagster reads this variable each time it handles an event; without it no batches are formed.
        # An explicit setting in the environment wins (0 turns batching off).
        if self.batch_size > 0:
            os.environ.setdefault(BATCH_SIZE_ENV, str(self.batch_size))

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        # On: a single-run backfill writes one planned event per asset instead of one per partition.
        # Trade-off (Dagster's): partitions of a failed run then show as missing, not failed.
        if os.getenv(PLANNED_SUBSETS_ENV) is not None:
            return super().supports_partition_subset_in_asset_materialization_planned_events  # type: ignore[misc]
        return self._planned_event_subsets

    # Whether this storage writes a batch of per-partition check evaluations in one go
    # (``_store_check_batch``); the others store them event by event.
    _check_batches = False

    def _fast_path(self, events: Sequence[EventLogEntry]) -> bool:
        """One run, one asset event type, every event with an asset key: how Dagster batches a
        step's per-partition events and a run's planned events; or (where supported) one run's
        per-partition evaluations of a check (``metadata.gate_check_events``)."""
        first = events[0]
        if not first.is_dagster_event:
            return False
        kind = first.get_dagster_event().event_type
        if kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            return self._check_batches and all(_partitioned_check_evaluation(e, first.run_id) for e in events)
        if kind not in _FAST_PATH_EVENTS:
            return False
        return all(
            event.run_id == first.run_id
            and event.is_dagster_event
            and event.get_dagster_event().event_type == kind
            and event.get_dagster_event().asset_key is not None
            for event in events
        )

    def _segments(self, events: Sequence[EventLogEntry]) -> Iterator[tuple[bool, list[EventLogEntry]]]:
        """The batch cut into consecutive runs, in order: (True, events the fast path takes) and
        (False, the others between them). Dagster mixes a run's few ASSET_CHECK_EVALUATION_PLANNED
        events into its thousands of planned materializations (sorted by asset key); without the cut
        every batch holding one of them went event by event (~10 ms each, most of a backfill's
        run creation)."""

        def kind(event: EventLogEntry):
            return (event.run_id, event.get_dagster_event().event_type) if self._fast_path([event]) else None

        for key, group in groupby(events, key=kind):
            segment = list(group)
            yield key is not None and self._fast_path(segment), segment

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Each fast-path segment in one transaction (the storage's ``_store_uniform_batch``), the
        rest through the stock storage's path, in order."""
        check.sequence_param(events, "events", EventLogEntry)
        for fast, segment in self._segments(events):
            if fast and segment[0].get_dagster_event().event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                self._store_check_batch(segment)  # type: ignore[attr-defined]
            elif fast:
                self._store_uniform_batch(segment)  # type: ignore[attr-defined]
            else:
                super().store_event_batch(segment)  # type: ignore[misc]

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """The stock rows (one per planned partition of a partitioned check), with the event
        serialized once and one executemany: the stock code serializes the event per partition and
        compiles one multi-row VALUES statement, ~2 s per check for a 10-year backfill here."""
        planned = event.get_dagster_event().asset_check_planned_data
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),  # type: ignore[attr-defined]
            evaluation_event_storage_id=event_id,
        )
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            conn.execute(AssetCheckExecutionsTable.insert(), [dict(common, partition=key) for key in keys])

    @staticmethod
    def _latest_per_asset(events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> list[tuple]:
        """(event, id) of each asset's last event in a fast-path batch: the asset entry the
        per-event path leaves behind (one event type per batch, so the last one wins)."""
        latest = {event.get_dagster_event().asset_key: (event, event_id) for event, event_id in zip(events, event_ids)}
        return list(latest.values())


class QuantLabSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite` with the batching event log; same files under base_dir, so an existing
    DAGSTER_HOME keeps its history. dagster.yaml::

        storage:
          custom:
            module: quantlab_assets.batch_orchestrator.event_log_storage
            class: QuantLabSqliteStorage
            config:
              base_dir: {env: DAGSTER_HOME}
              batch_size: 1000               # optional
              planned_event_subsets: false   # optional; see _CONFIG
    """

    def __init__(
        self,
        base_dir: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        planned_event_subsets: bool = False,
        inst_data: ConfigurableClassData | None = None,
    ):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BatchingSqliteEventLogStorage(
            os.path.join(base_dir, "history", "runs", ""),
            batch_size=batch_size,
            planned_event_subsets=planned_event_subsets,
        )

    @classmethod
    def config_type(cls):
        return _CONFIG

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        config = dict(config_value)
        os.makedirs(config["base_dir"], exist_ok=True)
        return cls(inst_data=inst_data, **config)


class BatchingSqliteEventLogStorage(EventBatching, SqliteEventLogStorage):
    """`SqliteEventLogStorage` with a real `store_event_batch` (wired in by `QuantLabSqliteStorage`)."""

    def __init__(
        self,
        base_dir: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        planned_event_subsets: bool = False,
        inst_data: ConfigurableClassData | None = None,
    ):
        self._init_batching(batch_size, planned_event_subsets)
        self._engines: OrderedDict[str, Any] = OrderedDict()
        self._known_tables: set[str] = set()
        self._has_index_cols = False
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return _CONFIG

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **dict(config_value))

    # -- connections ---------------------------------------------------------------------------
    def _engine(self, shard: str):
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            # Dagster keeps these files in WAL mode; with synchronous=NORMAL a commit no longer waits
            # for an fsync (2.6 ms each here, two per unbatched event). Safe from corruption; a power
            # loss may drop a running run's last events, never the warehouse's rows.
            sqlalchemy.event.listen(engine, "connect", _synchronous_normal)
            self._engines[shard] = engine
            while len(self._engines) > MAX_CACHED_ENGINES:
                self._engines.popitem(last=False)
        else:
            self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Any]:
        # Same contract as the parent (lock, lazy schema init, one transaction); the engine is reused.
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        if table_name in self._known_tables:
            return True
        found = super().has_table(table_name)
        if found:  # tables are only ever added by migrations; a negative answer is re-checked
            self._known_tables.add(table_name)
        return found

    def _has_asset_key_index_cols_on_connection(self, conn) -> bool:
        if not self._has_index_cols:
            self._has_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._has_index_cols

    # -- batches -------------------------------------------------------------------------------
    _check_batches = True

    def _store_check_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A run's per-partition evaluations of checks: the stock path's rows (the run shard's
        events, their index mirror, each planned execution row resolved) in three statements
        instead of four per event (a 10-year backfill evaluates ~80 checks on 2,610 partitions)."""
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            event_ids = _inserted_ids(conn, rows)
            _write_check_rows(conn, _check_rows(events, event_ids))

    def _store_uniform_batch(self, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)

        # Mirror into the cross-run index: ids are needed for the tags and the asset entry.
        with self.index_transaction() as conn:
            event_ids = _inserted_ids(conn, rows)
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in self._latest_per_asset(events, event_ids):
                self._store_asset_event(conn, event, event_id)


def _partitioned_check_evaluation(event: EventLogEntry, run_id: str) -> bool:
    """A run's evaluation of a check on one partition: the row its planned event wrote exists."""
    if not event.is_dagster_event or event.run_id != run_id or not run_id:
        return False
    dagster_event = event.get_dagster_event()
    if dagster_event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
        return False
    return dagster_event.asset_check_evaluation_data.partition is not None


def _check_rows(events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The ``asset_check_executions`` values each evaluation leaves (the stock
    ``_update_asset_check_evaluation``'s), keyed for the update by (asset, check, run, partition)."""
    rows = []
    for event, event_id in zip(events, event_ids):
        evaluation = event.get_dagster_event().asset_check_evaluation_data
        target = evaluation.target_materialization_data
        rows.append(
            {
                "k_asset_key": evaluation.asset_key.to_string(),
                "k_check_name": evaluation.check_name,
                "k_run_id": event.run_id,
                "k_partition": evaluation.partition,
                "execution_status": (
                    AssetCheckExecutionRecordStatus.SUCCEEDED.value
                    if evaluation.passed
                    else AssetCheckExecutionRecordStatus.FAILED.value
                ),
                "evaluation_event": serialize_value(event),
                "evaluation_event_timestamp": datetime.fromtimestamp(event.timestamp, timezone.utc).replace(
                    tzinfo=None
                ),
                "evaluation_event_storage_id": event_id,
                "materialization_event_storage_id": target.storage_id if target else None,
            }
        )
    return rows


def _write_check_rows(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Update the planned rows the evaluations resolve (one executemany), insert the others (a
    check evaluated without a planned row, as the stock path does)."""
    table = AssetCheckExecutionsTable
    keys = {(r["k_asset_key"], r["k_check_name"], r["k_run_id"], r["k_partition"]) for r in rows}
    asset_keys = sorted({k[0] for k in keys})
    run_ids = sorted({k[2] for k in keys})
    planned = {
        tuple(found)
        for found in conn.execute(
            sqlalchemy.select(table.c.asset_key, table.c.check_name, table.c.run_id, table.c.partition).where(
                table.c.asset_key.in_(asset_keys), table.c.run_id.in_(run_ids)
            )
        )
    }
    values = ["execution_status", "evaluation_event", "evaluation_event_timestamp", "evaluation_event_storage_id"]
    values.append("materialization_event_storage_id")
    update = (
        table.update()
        .where(
            table.c.asset_key == sqlalchemy.bindparam("k_asset_key"),
            table.c.check_name == sqlalchemy.bindparam("k_check_name"),
            table.c.run_id == sqlalchemy.bindparam("k_run_id"),
            table.c.partition == sqlalchemy.bindparam("k_partition"),
        )
        .values({name: sqlalchemy.bindparam(name) for name in values})
    )
    known = [r for r in rows if (r["k_asset_key"], r["k_check_name"], r["k_run_id"], r["k_partition"]) in planned]
    unknown = [r for r in rows if (r["k_asset_key"], r["k_check_name"], r["k_run_id"], r["k_partition"]) not in planned]
    if known:
        conn.execute(update, known)
    if unknown:
        conn.execute(
            table.insert(),
            [
                {
                    "asset_key": r["k_asset_key"],
                    "check_name": r["k_check_name"],
                    "run_id": r["k_run_id"],
                    "partition": r["k_partition"],
                    **{name: r[name] for name in values},
                }
                for r in unknown
            ],
        )


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _inserted_ids(conn: Any, rows: list[dict[str, Any]]) -> list[int]:
    """The ids of event rows inserted into the event log table, in the order of ``rows``: one
    multi-row INSERT ... RETURNING (SQLAlchemy's insertmanyvalues), not one statement per row."""
    insert = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
    return [row[0] for row in conn.execute(insert, rows)]
