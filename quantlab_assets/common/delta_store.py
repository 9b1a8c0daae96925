"""The Delta Lake warehouse backend: every table a Delta table in a folder or an S3 bucket.

``common/warehouse.py`` stays the one module that knows how a slice is read and replaced; when
it is handed a :class:`DeltaSession` (``QUANTLAB_WAREHOUSE_BACKEND=delta``) it calls this module.

* **Reads**: a session is an in-memory DuckDB connection on which each Delta table is registered
  as an Arrow dataset under the table's name, so every query the teams run (bound parameters,
  joins, filters pushed into the scan) is unchanged and DuckDB stays the query engine.
* **Writes**: replacing a slice is one Delta commit, an overwrite with a predicate
  (``replaceWhere``) naming exactly the slice: its dates, and its keys (strategy or symbols).
  The rows are cast by DuckDB to the declared SQL types first, the same casts the DuckDB
  backend's INSERT makes, so both backends store the same values.
* **Concurrent writers**: a table with a ``strategy`` column is partitioned by it, so writers of
  different strategies touch disjoint partitions and Delta's conflict check lets both commit.
  Two writers of the same slice conflict: the loser re-runs its write on the new version, at most
  ``QUANTLAB_DELTA_COMMIT_RETRIES`` times, logging each retry, then fails saying so.
* **Transactions**: inside ``warehouse.transaction`` the writes are queued and committed in order
  at the end (nothing on an exception). Delta has no multi-table transaction: each table's
  commit is atomic, the contract's slice is committed before its logs (docs/scaling.md).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import duckdb
import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from quantlab_assets.common import settings

logger = logging.getLogger(__name__)

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a listed folder that is not a table name is skipped
KEY_PARTITION = "strategy"  # tables with this column are partitioned by it (independent writers)
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}


class DeltaConflict(RuntimeError):
    """Concurrent writers of the same slice kept winning for every allowed retry."""


def arrow_schema(schema) -> pa.Schema:
    """The Arrow schema of a declared ``TableSchema`` (a type outside the map is an error)."""
    fields = []
    for c in schema.columns:
        kind = c.sql_type.upper()
        if kind not in _ARROW_TYPES:
            raise ValueError(f"table {schema.name!r} column {c.name!r}: SQL type {c.sql_type} has no Delta mapping")
        fields.append(pa.field(c.name, _ARROW_TYPES[kind], nullable=True))
    return pa.schema(fields)


def _quote(value: Any) -> str:
    """A string literal for a Delta (DataFusion) predicate; the value is data, never SQL."""
    if not isinstance(value, str):
        raise TypeError(f"slice key {value!r} must be a string")
    return "'" + value.replace("'", "''") + "'"


def slice_predicate(date_column: str, start, end, key_column: str | None = None, keys: Sequence[str] = ()) -> str:
    """The ``replaceWhere`` predicate of a slice: its dates, and its keys when given."""
    lo, hi = pd.Timestamp(start).date().isoformat(), pd.Timestamp(end).date().isoformat()
    pred = f"\"{date_column}\" >= '{lo}' AND \"{date_column}\" <= '{hi}'"
    if key_column is not None:
        pred += f' AND "{key_column}" IN ({", ".join(_quote(k) for k in keys)})' if keys else " AND FALSE"
    return pred


@dataclass(frozen=True)
class DeltaStore:
    """Where the Delta tables live: ``url`` (a folder, or ``s3://bucket/prefix``) and its options."""

    url: str
    storage_options: dict[str, str] = field(default_factory=dict)
    retries: int = 5
    backoff_s: float = 0.2

    @classmethod
    def from_settings(cls) -> DeltaStore:
        return cls(settings.delta_url(), settings.delta_storage_options(), settings.delta_commit_retries())

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def uri(self, table: str) -> str:
        return f"{self.url.rstrip('/')}/{table}"

    def options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None

    def table(self, name: str, version: int | None = None) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri(name), version=version, storage_options=self.options())
        except TableNotFoundError:
            return None

    def tables(self) -> list[str]:
        """Names of the Delta tables under ``url`` (folders holding a ``_delta_log``)."""
        if self.is_local:
            root = Path(self.url.removeprefix("file://"))
            if not root.is_dir():
                return []
            return sorted(p.name for p in root.iterdir() if _TABLE_NAME.match(p.name) and (p / "_delta_log").is_dir())
        from pyarrow import fs

        filesystem, root = _s3_filesystem(self.url, self.storage_options)
        infos = filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True))
        names = [i.base_name for i in infos if i.type == fs.FileType.Directory and _TABLE_NAME.match(i.base_name)]
        return sorted(
            n for n in names if filesystem.get_file_info(f"{root}/{n}/_delta_log").type != fs.FileType.NotFound
        )

    def create(self, schema) -> DeltaTable:
        """The table, created empty with the declared columns if it does not exist yet."""
        existing = self.table(schema.name)
        if existing is not None:
            return existing
        partition = [KEY_PARTITION] if KEY_PARTITION in schema.column_names else None
        try:
            return DeltaTable.create(
                self.uri(schema.name),
                arrow_schema(schema),
                mode="ignore",  # a concurrent creator won: use its table
                partition_by=partition,
                storage_options=self.options(),
            )
        except Exception:  # noqa: BLE001  (lost a creation race on the first commit: the table exists now)
            table = self.table(schema.name)
            if table is None:
                raise
            return table

    def commit(self, what: str, write: Callable[[], None]) -> None:
        """Run ``write`` (one Delta commit); on a conflict re-run it, ``retries`` times at most."""
        for attempt in range(self.retries + 1):
            try:
                write()
                return
            except CommitFailedError as exc:
                if attempt == self.retries:
                    raise DeltaConflict(
                        f"delta: {what}: a concurrent writer of the same slice won {attempt + 1} times "
                        f"({exc}); nothing of this write was committed: run the step again, or raise "
                        f"{settings.DELTA_COMMIT_RETRIES}"
                    ) from exc
                wait = self.backoff_s * (2**attempt) * (0.5 + random.random())
                logger.warning(
                    "delta: %s conflicted with a concurrent commit (attempt %d of %d); retrying in %.2f s",
                    what,
                    attempt + 1,
                    self.retries + 1,
                    wait,
                )
                time.sleep(wait)

    def replace(self, schema, data: pa.Table, predicate: str | None) -> None:
        """One commit replacing the rows matching ``predicate`` (None: every row) with ``data``."""
        self.create(schema)

        def write() -> None:
            write_deltalake(
                self.uri(schema.name),
                data,
                mode="overwrite",
                predicate=predicate,
                storage_options=self.options(),
                commit_properties=CommitProperties(custom_metadata={"quantlab.slice": predicate or "all rows"}),
            )

        self.commit(f"replacing {schema.name} where {predicate or 'TRUE'}", write)

    def append(self, schema, data: pa.Table) -> None:
        self.create(schema)
        if not data.num_rows:
            return
        self.commit(
            f"appending {data.num_rows} rows to {schema.name}",
            lambda: write_deltalake(self.uri(schema.name), data, mode="append", storage_options=self.options()),
        )

    def history(self, name: str, limit: int | None = None) -> pd.DataFrame:
        """The table's versions, newest first: version, timestamp, operation, the slice replaced."""
        table = self.table(name)
        if table is None:
            raise ValueError(f"no Delta table {name!r} under {self.url} (tables: {', '.join(self.tables()) or 'none'})")
        rows = []
        for h in table.history(limit):
            params = h.get("operationParameters") or {}
            rows.append(
                {
                    "version": int(h.get("version", -1)),
                    "timestamp": pd.Timestamp(h.get("timestamp", 0), unit="ms"),
                    "operation": h.get("operation", ""),
                    "slice": h.get("quantlab.slice") or params.get("predicate") or "",
                }
            )
        return pd.DataFrame(rows, columns=["version", "timestamp", "operation", "slice"])

    def restore(self, name: str, version: int) -> int:
        """Restore ``name`` to ``version`` (itself a new commit); returns the new version."""
        table = self.table(name)
        if table is None:
            raise ValueError(f"no Delta table {name!r} under {self.url}")
        current = table.version()
        if not 0 <= version <= current:
            raise ValueError(f"table {name!r} has versions 0..{current}; {version} is not one of them")
        table.restore(version)
        return table.version()

    def restore_key(self, name: str, version: int, key_column: str, key: str) -> int:
        """Put back one key's rows (a strategy's) as they were at ``version``, the other keys' rows
        untouched: one commit replacing that key's partition. Returns the new version."""
        table = self.table(name)
        if table is None:
            raise ValueError(f"no Delta table {name!r} under {self.url}")
        current = table.version()
        if not 0 <= version <= current:
            raise ValueError(f"table {name!r} has versions 0..{current}; {version} is not one of them")
        old = self.table(name, version)
        assert old is not None  # the version exists: checked above
        import pyarrow.dataset as ds

        dataset = old.to_pyarrow_dataset()
        if key_column not in dataset.schema.names:
            raise ValueError(f"table {name!r} has no column {key_column!r}")
        rows = dataset.to_table(filter=ds.field(key_column) == key)
        predicate = f'"{key_column}" = {_quote(key)}'
        self.commit(
            f"restoring {name} {key_column}={key} to version {version}",
            lambda: write_deltalake(
                self.uri(name),
                rows.select(table.to_pyarrow_dataset().schema.names),
                mode="overwrite",
                predicate=predicate,
                storage_options=self.options(),
                commit_properties=CommitProperties(
                    custom_metadata={"quantlab.slice": f"{predicate} restored to version {version}"}
                ),
            ),
        )
        return self.table(name).version()  # type: ignore[union-attr]


def _s3_filesystem(url: str, options: dict[str, str]):
    """A pyarrow S3 filesystem for listing ``s3://bucket/prefix`` with delta-rs's options."""
    from pyarrow import fs

    lower = {k.lower(): v for k, v in options.items()}
    endpoint = lower.get("aws_endpoint_url") or lower.get("endpoint_url") or ""
    scheme = "http" if endpoint.startswith("http://") else "https"
    s3 = fs.S3FileSystem(
        access_key=lower.get("aws_access_key_id"),
        secret_key=lower.get("aws_secret_access_key"),
        region=lower.get("aws_region", "us-east-1"),
        endpoint_override=endpoint.split("://", 1)[-1] or None,
        scheme=scheme,
    )
    return s3, url.removeprefix("s3://").rstrip("/")


def to_arrow(frame: pd.DataFrame, schema) -> pa.Table:
    """``frame`` cast by DuckDB to the declared SQL types (the DuckDB backend's INSERT casts)."""
    con = duckdb.connect()
    try:
        con.register("_incoming", frame)
        cols = ", ".join(f'CAST("{c.name}" AS {c.sql_type}) AS "{c.name}"' for c in schema.columns)
        table = con.sql(f"SELECT {cols} FROM _incoming").to_arrow_table()
    finally:
        con.close()
    return table.cast(arrow_schema(schema))


class DeltaSession:
    """A DuckDB connection whose tables are the store's Delta tables (see the module docstring).

    Anything but the warehouse's own write functions is passed to the DuckDB connection, so
    readers use it as they use a DuckDB file connection."""

    backend = "delta"

    def __init__(self, store: DeltaStore):
        self.store = store
        self.con = duckdb.connect()
        self._pending: list[tuple[str, Callable[[], None]]] | None = None
        for name in store.tables():
            self._register(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def close(self) -> None:
        self.con.close()

    def _register(self, name: str) -> None:
        table = self.store.table(name)
        if table is not None:
            self.con.register(name, table.to_pyarrow_dataset())

    def ensure(self, schema) -> list[str]:
        """Create ``schema``'s table if missing and make it queryable under its name; returns the
        declared columns the stored table lacks (``warehouse.ensure_table`` refuses those)."""
        try:
            stored = [d[0] for d in self.con.execute(f'SELECT * FROM "{schema.name}" LIMIT 0').description]
        except duckdb.Error:
            self.store.create(schema)
            self._register(schema.name)
            return []
        return [c for c in schema.column_names if c not in stored]

    def _run(self, what: str, op: Callable[[], None], name: str) -> None:
        def commit_and_refresh() -> None:
            op()
            self._register(name)

        if self._pending is None:
            commit_and_refresh()
        else:
            self._pending.append((what, commit_and_refresh))

    def replace(self, schema, data: pd.DataFrame, predicate: str | None) -> None:
        arrow = to_arrow(data, schema)
        self._run(predicate or "all rows", lambda: self.store.replace(schema, arrow, predicate), schema.name)

    def append(self, schema, data: pd.DataFrame) -> None:
        arrow = to_arrow(data, schema)
        self._run(f"append {schema.name}", lambda: self.store.append(schema, arrow), schema.name)

    @contextmanager
    def transaction(self) -> Iterator[DeltaSession]:
        """Queue the writes; commit them in order when the block ends (none on an exception)."""
        if self._pending is not None:
            yield self
            return
        self._pending = []
        try:
            yield self
            pending = self._pending
        finally:
            self._pending = None
        for _, commit in pending:
            commit()


def is_delta(con: object) -> TypeGuard[DeltaSession]:
    return getattr(con, "backend", None) == "delta"
