"""Postgres instance storage whose event log writes a batch of asset events in one transaction.

Why: dagster-postgres's `store_event_batch` writes a batch in one statement only when it is all
ASSET_MATERIALIZATION or all ASSET_OBSERVATION events. Everything else Dagster batches, in particular
a run's ASSET_MATERIALIZATION_PLANNED events (one per asset and partition at run creation), is
stored one event at a time: two fresh connections (no pool), two transactions and a NOTIFY per event.
Its materialization batch also updates the asset entry of the batch's last event only, which is
wrong when a step's batch spans several assets. And Dagster forms no batches at all unless
DAGSTER_EVENT_BATCH_SIZE is set.

This storage reuses the SQLite batching storage's rules (event_log_storage.EventBatching: the batch
size, one planned event per partition, which batches take the fast path) on Postgres: one
transaction per batch holding one multi-row INSERT ... RETURNING id, the asset event tags and each
asset's entry from its last event. Rows are the same as the per-event path's (a test compares both
event logs); anything else falls back to dagster-postgres. The events Dagster never batches (step,
log, check events) reuse a pooled connection instead of opening one each (`pool_size`). Run and schedule storage are
dagster-postgres's. dagster.yaml (docs/dagster.postgres.yaml)::

    storage:
      custom:
        module: quantlab_assets.batch_orchestrator.postgres_storage
        class: QuantLabPostgresStorage
        config:
          postgres_db: {username: ..., password: ..., hostname: ..., db_name: ..., port: ...}
          batch_size: 1000               # optional
          planned_event_subsets: false   # optional
          pool_size: 1                   # optional; connections kept per process, 0 = one per event
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import Field, IntSource
from dagster import _check as check
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

from quantlab_assets.batch_orchestrator.event_log_storage import BATCHING_CONFIG, DEFAULT_BATCH_SIZE, EventBatching

DEFAULT_POOL_SIZE = 1
# Extra connections a busy process (the daemon's threads) may open beyond the pool, closed after use.
POOL_OVERFLOW = 4
POOL_RECYCLE_SECONDS = 3600  # a long-lived daemon's connection is renewed hourly rather than trusted forever

_POOL_CONFIG = {
    "pool_size": Field(
        IntSource,
        is_required=False,
        default_value=DEFAULT_POOL_SIZE,
        description="Connections the event log keeps open per process. dagster-postgres's default (0 here) "
        "opens and authenticates a new connection for every event outside a batch (step, log "
        "and check events): measured 5x slower per event. At hundreds of step processes, set 0 "
        "and put PgBouncer in front of the server instead.",
    ),
}


def _config():
    return {**pg_config(), **BATCHING_CONFIG, **_POOL_CONFIG}


def _kwargs(config_value) -> dict:
    return {
        "postgres_url": pg_url_from_config(config_value),
        "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config_value),
        "batch_size": config_value.get("batch_size", DEFAULT_BATCH_SIZE),
        "planned_event_subsets": config_value.get("planned_event_subsets", False),
        "pool_size": config_value.get("pool_size", DEFAULT_POOL_SIZE),
    }


class QuantLabPostgresStorage(DagsterPostgresStorage):
    """`storage: postgres` (same tables, same config keys) with the batching event log."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider=None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        planned_event_subsets: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
    ):
        # DagsterPostgresStorage.__init__ with our event log in place of the stock one (building both
        # would cost the schema checks, and their connections, twice on every instance start).
        self.postgres_url = postgres_url
        self.should_autocreate_tables = check.bool_param(should_autocreate_tables, "should_autocreate_tables")
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        self._run_storage = PostgresRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._event_log_storage = BatchingPostgresEventLogStorage(
            postgres_url,
            should_autocreate_tables,
            token_provider=token_provider,
            batch_size=batch_size,
            planned_event_subsets=planned_event_subsets,
            pool_size=pool_size,
        )
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        # mypy cannot solve the base's instance type parameter from an unbound __init__ call
        DagsterStorage.__init__(self)  # type: ignore[arg-type]

    @classmethod
    def config_type(cls):
        return _config()

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return cls(inst_data=inst_data, **_kwargs(config_value))


class BatchingPostgresEventLogStorage(EventBatching, PostgresEventLogStorage):
    """`PostgresEventLogStorage` whose `store_event_batch` covers every uniform asset-event batch."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider=None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        planned_event_subsets: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
    ):
        self._init_batching(batch_size, planned_event_subsets)
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data, token_provider=token_provider)
        self.pool_size = check.int_param(pool_size, "pool_size")
        if self.pool_size > 0:
            # The parent's engine has no pool; this one keeps connections for the process's life (the
            # webserver swaps in its own pool through optimize_for_webserver, as before).
            self._engine = create_pg_engine(
                self.postgres_url,
                self._token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=self.pool_size,
                max_overflow=POOL_OVERFLOW,
                pool_recycle=POOL_RECYCLE_SECONDS,
                pool_pre_ping=True,
            )

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()  # closes the pooled connections (a no-op without a pool)

    @classmethod
    def config_type(cls):
        return _config()

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return cls(inst_data=inst_data, **_kwargs(config_value))

    def _store_uniform_batch(self, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]
        # One table serves runs and the index on Postgres: one transaction for the whole batch.
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            event_ids = [int(row[0]) for row in inserted.fetchall()]
            check.invariant(len(event_ids) == len(events), "one id per inserted event")
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in self._latest_per_asset(events, event_ids):
                self._store_asset_event(conn, event, event_id)
